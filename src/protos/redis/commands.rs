//! The commands Packetbeat recognises as requests when it cannot tell the client from the
//! server otherwise (its `redisCommands` table), in sorted order for a binary search.

pub const COMMANDS: &[&str] = &[
    "APPEND", "AUTH", "BGREWRITEAOF", "BGSAVE", "BITCOUNT", "BITOP", "BITPOS", "BLPOP", "BRPOP",
    "BRPOPLPUSH", "CLIENT GETNAME", "CLIENT KILL", "CLIENT LIST", "CLIENT PAUSE",
    "CLIENT SETNAME", "CONFIG GET", "CONFIG RESETSTAT", "CONFIG REWRITE", "CONFIG SET", "DBSIZE",
    "DEBUG OBJECT", "DEBUG SEGFAULT", "DECR", "DECRBY", "DEL", "DISCARD", "DUMP", "ECHO", "EVAL",
    "EVALSHA", "EXEC", "EXISTS", "EXPIRE", "EXPIREAT", "FLUSHALL", "FLUSHDB", "GET", "GETBIT",
    "GETRANGE", "GETSET", "HDEL", "HEXISTS", "HGET", "HGETALL", "HINCRBY", "HINCRBYFLOAT",
    "HKEYS", "HLEN", "HMGET", "HMSET", "HSCAN", "HSET", "HSETINX", "HVALS", "INCR", "INCRBY",
    "INCRBYFLOAT", "INFO", "KEYS", "LASTSAVE", "LINDEX", "LINSERT", "LLEN", "LPOP", "LPUSH",
    "LPUSHX", "LRANGE", "LREM", "LSET", "LTRIM", "MGET", "MIGRATE", "MONITOR", "MOVE", "MSET",
    "MSETNX", "MULTI", "OBJECT", "PERSIST", "PEXPIRE", "PEXPIREAT", "PFADD", "PFCOUNT",
    "PFMERGE", "PING", "PSETEX", "PSUBSCRIBE", "PTTL", "PUBLISH", "PUBSUB", "PUNSUBSCRIBE",
    "QUIT", "RANDOMKEY", "RENAME", "RENAMENX", "RESTORE", "RPOP", "RPOPLPUSH", "RPUSH", "RPUSHX",
    "SADD", "SAVE", "SCAN", "SCARD", "SCRIPT EXISTS", "SCRIPT FLUSH", "SCRIPT KILL",
    "SCRIPT LOAD", "SDIFF", "SDIFFSTORE", "SELECT", "SET", "SETBIT", "SETEX", "SETNX",
    "SETRANGE", "SHUTDOWN", "SINTER", "SINTERSTORE", "SISMEMBER", "SLAVEOF", "SLOWLOG",
    "SMEMBERS", "SMOVE", "SORT", "SPOP", "SRANDMEMBER", "SREM", "SSCAN", "STRLEN", "SUBSCRIBE",
    "SUNION", "SUNIONSTORE", "SYNC", "TIME", "TTL", "TYPE", "UNSUBSCRIBE", "UNWATCH", "WATCH",
    "ZADD", "ZCARD", "ZCOUNT", "ZINCRBY", "ZINTERSTORE", "ZRANGE", "ZRANGEBYSCORE", "ZRANK",
    "ZREM", "ZREMRANGEBYLEX", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREVRANGE",
    "ZREVRANGEBYSCORE", "ZREVRANK", "ZSCAN", "ZSCORE", "ZUNIONSTORE",
];

/// Whether `word` (any case) is in the table.
pub fn is_command(word: &[u8]) -> bool {
    if word.len() > 32 {
        return false;
    }
    let mut buf = [0u8; 32];
    let up = &mut buf[..word.len()];
    up.copy_from_slice(word);
    up.make_ascii_uppercase();
    COMMANDS.binary_search_by(|c| c.as_bytes().cmp(up)).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_is_sorted_and_found() {
        assert!(super::COMMANDS.windows(2).all(|w| w[0] < w[1]));
        assert!(super::is_command(b"lindex"));
        assert!(super::is_command(b"CONFIG get"));
        assert!(!super::is_command(b"FOO"));
    }
}
