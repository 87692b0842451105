//! Durations (`30s`, `2h 30m`) and sizes (`100`, `1KiB`, `4kB`) on the
//! command line, and their display.

use std::time::Duration;

/// A duration like `500ms`, `30s`, `15m` or `2h 30m`; a bare number is
/// refused (its unit would be a guess).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{e} (write e.g. 500ms, 30s, 15m, 2h 30m)"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(duration)
}

/// A size in bytes: a number with an optional unit `B`, `kB`/`KB` (1000),
/// `KiB` (1024), `MB`, `MiB`.
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (write e.g. 100, 1KiB, 4kB)"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "k" | "kB" | "KB" => 1000,
        "Ki" | "KiB" => 1024,
        "M" | "MB" => 1_000_000,
        "Mi" | "MiB" => 1 << 20,
        other => return Err(format!("unknown size unit {other:?} (B, kB, KiB, MB, MiB)")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A duration for people: `1.24s`, `812ms`, `35µs`.
pub(crate) fn show_duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0}µs")
    } else if micros < 1e6 {
        format!("{:.1}ms", micros / 1e3)
    } else {
        format!("{:.2}s", micros / 1e6)
    }
}

/// A count with thousands separators: `1,000,000`.
pub(crate) fn show_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_may_not_be_zero() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2h 30m"), Ok(Duration::from_secs(9000)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("4kB"), Ok(4000));
        assert_eq!(parse_size("2 MiB"), Ok(2 << 20));
        assert!(parse_size("1GiB").is_err());
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999999").is_err());
    }

    #[test]
    fn counts_and_durations_read_well() {
        assert_eq!(show_count(0), "0");
        assert_eq!(show_count(999), "999");
        assert_eq!(show_count(1000), "1,000");
        assert_eq!(show_count(1_234_567), "1,234,567");
        assert_eq!(show_duration(Duration::from_micros(35)), "35µs");
        assert_eq!(show_duration(Duration::from_micros(812_400)), "812.4ms");
        assert_eq!(show_duration(Duration::from_millis(1240)), "1.24s");
    }
}
