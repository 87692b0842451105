//! The Lua scripts the store runs, each atomic on the server. redis-rs sends
//! them with EVALSHA and loads them once on NOSCRIPT.

use redis::Script;

/// Compare-and-swap, keeping the index (and the expiry schedule) in step.
///
/// KEYS: data key, index, expiry schedule. ARGV: member, has-expected
/// (`1`/`0`), expected, has-new, new, PX milliseconds (`""` for none), the
/// expiry's score (ms since the epoch).
const CAS: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[2] == '1' then
  if current ~= ARGV[3] then return 0 end
elseif current then
  return 0
end
if ARGV[4] == '1' then
  if ARGV[6] ~= '' then
    redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[6])
    redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
  else
    redis.call('SET', KEYS[1], ARGV[5])
  end
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
elseif current then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
";

/// One page of the index by lex range, skipping (and removing) members
/// whose key no longer exists, reading on until the page is full.
///
/// KEYS: index. ARGV: min, max (ZRANGE BYLEX syntax), how many to return,
/// the data key prefix.
const LIST: &str = r"
local found = {}
local min = ARGV[1]
local want = tonumber(ARGV[3])
while #found < want do
  local batch = redis.call('ZRANGE', KEYS[1], min, ARGV[2], 'BYLEX', 'LIMIT', 0, want - #found)
  if #batch == 0 then break end
  for _, member in ipairs(batch) do
    if redis.call('EXISTS', ARGV[4] .. member) == 1 then
      found[#found + 1] = member
    else
      redis.call('ZREM', KEYS[1], member)
    end
  end
  min = '(' .. batch[#batch]
end
return found
";

/// Drops index entries of expired keys, up to a bound per call.
///
/// KEYS: index, expiry schedule. ARGV: now (ms since the epoch), the most
/// entries to look at, the data key prefix. Returns {looked at, dropped}.
const PURGE: &str = r"
local due = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local dropped = 0
for _, member in ipairs(due) do
  local ttl = redis.call('PTTL', ARGV[3] .. member)
  if ttl == -2 then
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZREM', KEYS[2], member)
    dropped = dropped + 1
  elseif ttl == -1 then
    redis.call('ZREM', KEYS[2], member)
  else
    redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + ttl, member)
  end
end
return {#due, dropped}
";

/// The scripts, hashed once.
#[derive(Clone)]
pub(crate) struct Scripts {
    pub(crate) cas: Script,
    pub(crate) list: Script,
    pub(crate) purge: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            cas: Script::new(CAS),
            list: Script::new(LIST),
            purge: Script::new(PURGE),
        }
    }
}
