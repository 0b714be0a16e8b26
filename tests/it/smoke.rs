//! The shortest path through the server: create a bucket, put, get, list, delete.

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{Server, pattern};

#[tokio::test]
async fn put_get_list_delete_round_trip() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("smoke").send().await.unwrap();
    for (key, len) in [("small", 100usize), ("big/one", 3 * 1024 * 1024 + 7)] {
        let data = pattern(len, len as u64);
        s3.put_object()
            .bucket("smoke")
            .key(key)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        let got = s3
            .get_object()
            .bucket("smoke")
            .key(key)
            .send()
            .await
            .unwrap();
        let body = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(body.as_ref(), &data[..], "{key}");
    }
    let list = s3.list_objects_v2().bucket("smoke").send().await.unwrap();
    let keys: Vec<_> = list.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["big/one", "small"]);
    s3.delete_object()
        .bucket("smoke")
        .key("small")
        .send()
        .await
        .unwrap();
    let err = s3
        .get_object()
        .bucket("smoke")
        .key("small")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchKey"));
}
