//! Finding keys by pattern and type with `SCAN`, for the tools that list what is on a server.

use redis::aio::ConnectionLike;

/// How many keys Redis looks at per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// Every key matching `pattern` whose Redis type is `kind`, sorted, each once (`SCAN` may
/// return a key more than once). Cursor-based: Redis is never blocked by a full key listing.
pub(crate) async fn scan(
    connection: &mut (impl ConnectionLike + Send),
    pattern: &str,
    kind: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let (next, batch): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .arg("TYPE")
            .arg(kind)
            .query_async(connection)
            .await?;
        keys.extend(batch);
        if next == "0" {
            keys.sort();
            keys.dedup();
            return Ok(keys);
        }
        cursor = next;
    }
}
