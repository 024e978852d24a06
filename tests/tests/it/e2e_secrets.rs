//! The shared Secrets Manager cache against moto.

use std::time::Duration;

use hookvault_aws::secrets::{SecretCache, SecretError};
use hookvault_localstack::stack::LocalStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_serves_within_its_ttl_and_rereads_on_refresh_or_expiry() {
    let stack = LocalStack::builder().start().await.unwrap();
    let sm = stack.secrets.clone();
    sm.create_secret()
        .name("provider/api-key")
        .secret_string("key-v1")
        .send()
        .await
        .unwrap();

    let cache = SecretCache::new(sm.clone(), Duration::from_secs(60));
    assert_eq!(
        cache.get("provider/api-key").await.unwrap().expose(),
        "key-v1"
    );
    // A rotation moves AWSCURRENT: within the TTL the cache keeps the old value…
    sm.put_secret_value()
        .secret_id("provider/api-key")
        .secret_string("key-v2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cache.get("provider/api-key").await.unwrap().expose(),
        "key-v1"
    );
    // …until it is refreshed (the api function does so after a 401).
    assert_eq!(
        cache.refresh("provider/api-key").await.unwrap().expose(),
        "key-v2"
    );

    let short = SecretCache::new(sm.clone(), Duration::from_millis(200));
    assert_eq!(
        short.get("provider/api-key").await.unwrap().expose(),
        "key-v2"
    );
    sm.put_secret_value()
        .secret_id("provider/api-key")
        .secret_string("key-v3")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        short.get("provider/api-key").await.unwrap().expose(),
        "key-v3",
        "expired entries are reread"
    );

    let err = cache.get("provider/missing").await.unwrap_err();
    assert_eq!(err, SecretError::NotFound("provider/missing".into()));
    assert!(!format!("{err} {:?}", cache.get("provider/api-key").await.unwrap()).contains("key-v"));
}
