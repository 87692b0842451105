//! `hide_keys_in_errors` keeps keys out of errors' `Display` and `Debug`,
//! for errors raised by the typed client, the validator and the store. A
//! test binary of its own: the switch is process-wide.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use kv_core::{ErrorKind, Kv, MemoryStore};

#[tokio::test]
async fn hidden_keys_never_show_in_errors() {
    let kv = Kv::new(
        MemoryStore::builder()
            .max_value_bytes(16)
            .build()
            .into_dyn(),
    );
    let secret = "session:9f8e7d6c5b4a";
    kv.set(secret, &42).await.unwrap();
    let shown = kv.get::<String>(secret).await.unwrap_err();
    assert!(shown.to_string().contains(secret), "{shown}");

    kv_core::hide_keys_in_errors(true);
    assert!(kv_core::keys_hidden_in_errors());
    let decode = kv.get::<String>(secret).await.unwrap_err();
    let too_large = kv.set(secret, &"x".repeat(64)).await.unwrap_err();
    let encode = kv
        .set(secret, &std::collections::HashMap::from([((1, 2), 3)]))
        .await
        .unwrap_err();
    for (err, kind) in [
        (&decode, ErrorKind::Decode),
        (&too_large, ErrorKind::ValueTooLarge),
        (&encode, ErrorKind::Encode),
    ] {
        assert_eq!(err.kind(), kind);
        assert_eq!(err.key(), Some(secret), "code still reads the key");
        for text in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
            assert!(!text.contains("9f8e7d6c5b4a"), "{text}");
        }
        assert!(err.to_string().contains("key hidden, 20 bytes"), "{err}");
    }
    kv_core::hide_keys_in_errors(false);
    assert!(decode.to_string().contains(secret));
}
