//! The Lua scripts the store runs, each atomic on the server. redis-rs sends
//! them with EVALSHA and loads them once on NOSCRIPT.

use redis::Script;

/// Compare-and-swap, keeping the index (and the expiry schedule) and the
/// versions in step; a store without the index passes the data key alone.
///
/// KEYS: data key[, index, expiry schedule, versions]. ARGV: member,
/// has-expected (`1`/`0`), expected, has-new, new, PX milliseconds (`""`
/// for none), the expiry's score (ms since the epoch), the new version.
const CAS: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[2] == '1' then
  if current ~= ARGV[3] then return 0 end
elseif current then
  return 0
end
local indexed = #KEYS > 1
if ARGV[4] == '1' then
  if ARGV[6] ~= '' then
    redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[6])
    if indexed then redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1]) end
  else
    redis.call('SET', KEYS[1], ARGV[5])
  end
  if indexed then
    redis.call('ZADD', KEYS[2], 0, ARGV[1])
    redis.call('HSET', KEYS[4], ARGV[1], ARGV[8])
  end
elseif current then
  redis.call('DEL', KEYS[1])
  if indexed then
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('HDEL', KEYS[4], ARGV[1])
  end
end
return 1
";

/// The writes of `write_if` and `transact`, shared by both scripts: puts
/// (SET, index, schedule, version) and deletes (DEL, index, version).
/// `w` is the first ARGV of the writes, `k` the first KEYS of their data
/// keys; each write takes 6 ARGV: op (`p`/`d`), member, value, PX (`""`
/// for none), the expiry's score, the new version.
const APPLY: &str = r"
local function apply(nwrites, w, k)
  for i = 0, nwrites - 1 do
    local a = w + 6 * i
    local key = KEYS[k + i]
    local member = ARGV[a + 1]
    if ARGV[a] == 'p' then
      if ARGV[a + 3] ~= '' then
        redis.call('SET', key, ARGV[a + 2], 'PX', ARGV[a + 3])
        redis.call('ZADD', KEYS[2], ARGV[a + 4], member)
      else
        redis.call('SET', key, ARGV[a + 2])
      end
      redis.call('ZADD', KEYS[1], 0, member)
      redis.call('HSET', KEYS[3], member, ARGV[a + 5])
    else
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[1], member)
      redis.call('HDEL', KEYS[3], member)
    end
  end
end
";

/// Checks, then writes all or nothing: a transaction, or one `write_if`.
///
/// KEYS: index, expiry schedule, versions, the unindexed mark (see
/// [`UNINDEXED`]), then the data keys of the checks, then those of the
/// writes. ARGV: the number of checks, the
/// number of writes, then per check its member, its kind (`a` absent, `p`
/// present, `v` at a version) and the version, then per write its 6
/// arguments (see `APPLY`). Returns the (1-based) positions of the failed
/// checks; empty when every check held and the writes were applied.
const TRANSACT: &str = r"
local nchecks = tonumber(ARGV[1])
local nwrites = tonumber(ARGV[2])
unindexed(KEYS[4])
local failed = {}
for i = 0, nchecks - 1 do
  local a = 3 + 3 * i
  local exists = redis.call('EXISTS', KEYS[5 + i]) == 1
  local kind = ARGV[a + 1]
  local held
  if kind == 'a' then
    held = not exists
  elseif kind == 'p' then
    held = exists
  else
    held = exists and (redis.call('HGET', KEYS[3], ARGV[a]) or '') == ARGV[a + 2]
  end
  if not held then failed[#failed + 1] = i + 1 end
end
if #failed == 0 then
  apply(nwrites, 3 + 3 * nchecks, 5 + nchecks)
end
return failed
";

/// Adds to a counter with INCRBY (which keeps a TTL, and refuses what is
/// not a decimal 64-bit integer or a sum past its range with an error
/// before anything is written: the script stops there); a counter it
/// creates gets the TTL asked for. Keeps the index, schedule and version
/// in step; a store without the index passes the data key alone.
///
/// KEYS: data key[, index, expiry schedule, versions]. ARGV: member, delta,
/// PX for a new counter (`""` for none), its expiry's score, the new
/// version. Returns the new value's text (Lua numbers are doubles).
const INCREMENT: &str = r"
local created = ARGV[3] ~= '' and redis.call('EXISTS', KEYS[1]) == 0
redis.call('INCRBY', KEYS[1], ARGV[2])
local indexed = #KEYS > 1
if created then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  if indexed then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1]) end
end
if indexed then
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[5])
end
return redis.call('GET', KEYS[1])
";

/// One page of the index by lex range, skipping (and removing) members
/// whose key no longer exists, reading on until the page is full.
///
/// KEYS: index, versions, the unindexed mark (see [`UNINDEXED`]). ARGV:
/// min, max (ZRANGE BYLEX syntax), how many to return, the data key prefix.
const LIST: &str = r"
unindexed(KEYS[3])
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
      redis.call('HDEL', KEYS[2], member)
    end
  end
  min = '(' .. batch[#batch]
end
return found
";

/// Drops index entries of expired keys, up to a bound per call.
///
/// KEYS: index, expiry schedule, versions. ARGV: now (ms since the epoch), the most
/// entries to look at, the data key prefix. Returns {looked at, dropped}.
const PURGE: &str = r"
local due = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local dropped = 0
for _, member in ipairs(due) do
  local ttl = redis.call('PTTL', ARGV[3] .. member)
  if ttl == -2 then
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZREM', KEYS[2], member)
    redis.call('HDEL', KEYS[3], member)
    dropped = dropped + 1
  elseif ttl == -1 then
    redis.call('ZREM', KEYS[2], member)
  else
    redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + ttl, member)
  end
end
return {#due, dropped}
";

/// Raises `KVUNINDEXED` when a store without the index marked the prefix
/// (see [`crate::index::mark_unindexed`]): its index may miss keys and its
/// versions may be stale, so a list or a versioned check would be wrong.
const UNINDEXED: &str = r"
local function unindexed(mark)
  if redis.call('EXISTS', mark) == 1 then
    return error({err = 'KVUNINDEXED a store without the listing index (list_index = false) wrote under this prefix'})
  end
end
";

/// The scripts, hashed once.
#[derive(Clone)]
pub(crate) struct Scripts {
    pub(crate) cas: Script,
    pub(crate) list: Script,
    pub(crate) purge: Script,
    pub(crate) transact: Script,
    pub(crate) increment: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            cas: Script::new(CAS),
            list: Script::new(&format!("{UNINDEXED}{LIST}")),
            purge: Script::new(PURGE),
            transact: Script::new(&format!("{UNINDEXED}{APPLY}{TRANSACT}")),
            increment: Script::new(INCREMENT),
        }
    }
}
