//! `get`, `set`, `del`, `exists`, `ttl` and `list`: one key or one listing.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

use kv::{Bytes, ListOptions, SetOptions};

use super::{Ctx, key, print};
use crate::args::ListArgs;
use crate::failure::{Failure, Outcome};

/// `kv get KEY`: the value's bytes as stored; a missing key is an error.
pub(crate) async fn get(ctx: &Ctx<'_>, name: &str) -> Outcome {
    let key = key(name)?;
    let store = ctx.store().await?;
    let value = store
        .get(&key)
        .await
        .map_err(|e| Failure::store(&format!("get {name}"), &e))?
        .ok_or_else(|| Failure::new(format!("no such key: {name:?}")))?;
    let mut out = std::io::stdout().lock();
    print(&mut out, &value)?;
    // A terminal gets its prompt back on a line of its own; a pipe gets
    // the bytes exactly.
    if std::io::stdout().is_terminal() && !value.ends_with(b"\n") {
        print(&mut out, b"\n")?;
    }
    out.flush()
        .map_err(|e| Failure::io("writing to stdout", &e))
}

/// `kv set KEY VALUE|--file F [--ttl D]`.
pub(crate) async fn set(
    ctx: &Ctx<'_>,
    name: &str,
    value: Option<String>,
    file: Option<&Path>,
    ttl: Option<Duration>,
) -> Outcome {
    let key = key(name)?;
    let value = match (value, file) {
        (Some(value), _) => Bytes::from(value),
        (None, Some(path)) if path == Path::new("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::io("reading stdin", &e))?;
            Bytes::from(bytes)
        }
        (None, Some(path)) => Bytes::from(
            std::fs::read(path)
                .map_err(|e| Failure::io(&format!("reading {}", path.display()), &e))?,
        ),
        // clap requires one of them.
        (None, None) => return Err(Failure::usage("give a VALUE or --file")),
    };
    let store = ctx.store().await?;
    let options = ttl.map(SetOptions::ttl).unwrap_or_default();
    store
        .set(&key, value, options)
        .await
        .map_err(|e| Failure::store(&format!("set {name}"), &e))
}

/// `kv del KEY...`: one batch; prints how many keys existed.
pub(crate) async fn del(ctx: &Ctx<'_>, names: &[String]) -> Outcome {
    let keys = names.iter().map(|n| key(n)).collect::<Outcome<Vec<_>>>()?;
    let store = ctx.store().await?;
    let removed = store
        .batch_delete(&keys)
        .await
        .map_err(|e| Failure::store("del", &e))?;
    println!("{removed}");
    Ok(())
}

/// `kv exists KEY`: `true` or `false`.
pub(crate) async fn exists(ctx: &Ctx<'_>, name: &str) -> Outcome {
    let key = key(name)?;
    let store = ctx.store().await?;
    let found = store
        .exists(&key)
        .await
        .map_err(|e| Failure::store(&format!("exists {name}"), &e))?;
    println!("{found}");
    Ok(())
}

/// `kv ttl KEY`: the remaining time to live in milliseconds (`59873ms`),
/// or `none`; a missing key is an error.
pub(crate) async fn ttl(ctx: &Ctx<'_>, name: &str) -> Outcome {
    let key = key(name)?;
    let store = ctx.store().await?;
    let found = store
        .batch_get_with_ttl(std::slice::from_ref(&key))
        .await
        .map_err(|e| Failure::store(&format!("ttl {name}"), &e))?;
    let entry = found
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| Failure::new(format!("no such key: {name:?}")))?;
    match entry.ttl {
        Some(left) => println!("{}ms", left.as_millis()),
        None => println!("none"),
    }
    Ok(())
}

/// `kv list [PREFIX]`: keys in order, a page (`--limit`) or all of them.
pub(crate) async fn list(ctx: &Ctx<'_>, args: ListArgs) -> Outcome {
    let mut cursor = args.start_after.as_deref().map(key).transpose()?;
    let store = ctx.store().await?;
    let page_size = store
        .capabilities()
        .max_batch_ops
        .unwrap_or(kv::DEFAULT_LIST_LIMIT)
        .min(kv::DEFAULT_LIST_LIMIT);
    let mut left = (!args.all).then_some(args.limit);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut first = true;
    if args.json {
        print(&mut out, b"[")?;
    }
    loop {
        let limit = left.map_or(page_size, |n| n.min(page_size));
        if limit == 0 {
            break;
        }
        let mut options = ListOptions::default().limit(limit);
        if let Some(after) = cursor.take() {
            options = options.start_after(after);
        }
        let page = store
            .list(&args.prefix, options)
            .await
            .map_err(|e| Failure::store(&format!("list {:?}", args.prefix), &e))?;
        for key in &page.keys {
            if args.json {
                let sep: &[u8] = if first { b"" } else { b"," };
                print(&mut out, sep)?;
                let quoted = serde_json::to_string(key.as_str())
                    .map_err(|e| Failure::new(format!("encoding a key: {e}")))?;
                print(&mut out, quoted.as_bytes())?;
            } else {
                print(&mut out, key.as_bytes())?;
                print(&mut out, b"\n")?;
            }
            first = false;
        }
        if let Some(n) = &mut left {
            *n -= page.keys.len().min(*n);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if args.json {
        print(&mut out, b"]\n")?;
    }
    out.flush()
        .map_err(|e| Failure::io("writing to stdout", &e))?;
    // Whether keys remain past the limit: say how to go on.
    if let Some(last) = cursor.filter(|_| !args.all) {
        ctx.summary(&format!(
            "more keys may follow: --start-after {:?} for the next page, or --all",
            last.as_str()
        ));
    }
    Ok(())
}
