//! Streams through redcloak: field values encrypted; IDs, field names, groups kept.

use redcloak_commands::resp::Frame;
use redcloak_e2e::Stack;
use redis::{cmd, Value};

/// Decodes a `[[id, [f, v, …]], …]` reply into (id, [(f, v)]).
fn entries(v: Value) -> Vec<(String, Vec<(String, String)>)> {
    let Value::Array(items) = v else {
        panic!("entries: {v:?}")
    };
    items
        .into_iter()
        .map(|e| {
            let Value::Array(mut parts) = e else {
                panic!("entry")
            };
            let fields = parts.pop().unwrap();
            let id: String = redis::from_redis_value(parts.pop().unwrap()).unwrap();
            let flat: Vec<String> = redis::from_redis_value(fields).unwrap();
            (
                id,
                flat.chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect(),
            )
        })
        .collect()
}

/// The entries of the first stream in an XREAD/XREADGROUP reply (`[[stream, entries], …]`).
fn first_stream_entries(v: Value) -> Vec<(String, Vec<(String, String)>)> {
    let Value::Array(streams) = v else {
        panic!("{v:?}")
    };
    let Some(Value::Array(mut pair)) = streams.into_iter().next() else {
        panic!("no stream")
    };
    entries(pair.pop().expect("entries"))
}

#[test]
fn stream_commands_round_trip_and_store_ciphertext() {
    let stack = Stack::start();
    let mut c = stack.client();
    let id1: String = cmd("XADD")
        .arg("s")
        .arg("1-1")
        .arg("temp")
        .arg("21.5")
        .arg("unit")
        .arg("C")
        .query(&mut c)
        .unwrap();
    assert_eq!(id1, "1-1");
    let id2: String = cmd("XADD")
        .arg("s")
        .arg("NOMKSTREAM")
        .arg("MAXLEN")
        .arg("~")
        .arg(1000)
        .arg("*")
        .arg("temp")
        .arg("22.0")
        .query(&mut c)
        .unwrap();
    let _: String = cmd("XADD")
        .arg("s")
        .arg("MINID")
        .arg("~")
        .arg("0-1")
        .arg("LIMIT")
        .arg(10)
        .arg("*")
        .arg("temp")
        .arg("23.5")
        .query(&mut c)
        .unwrap();
    let err = cmd("XADD")
        .arg("s")
        .arg("*")
        .arg("lonely")
        .query::<String>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(err.contains("wrong number of arguments"), "{err}");

    let range = entries(
        cmd("XRANGE")
            .arg("s")
            .arg("-")
            .arg("+")
            .query(&mut c)
            .unwrap(),
    );
    assert_eq!(range.len(), 3);
    assert_eq!(
        range[0],
        (
            "1-1".to_owned(),
            vec![("temp".into(), "21.5".into()), ("unit".into(), "C".into())]
        )
    );
    assert_eq!(range[1].0, id2);
    let rev = entries(
        cmd("XREVRANGE")
            .arg("s")
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query(&mut c)
            .unwrap(),
    );
    assert_eq!(rev[0].1, vec![("temp".to_owned(), "23.5".to_owned())]);

    // XREAD: [[stream, entries]]
    let v: Value = cmd("XREAD")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg("s")
        .arg("0")
        .query(&mut c)
        .unwrap();
    let got = first_stream_entries(v);
    assert_eq!(got[0].1[0], ("temp".to_owned(), "21.5".to_owned()));

    // Consumer groups: XREADGROUP, XPENDING, XCLAIM, XAUTOCLAIM, XACK.
    let _: () = cmd("XGROUP")
        .arg("CREATE")
        .arg("s")
        .arg("g")
        .arg("0")
        .query(&mut c)
        .unwrap();
    let v: Value = cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("alice")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg("s")
        .arg(">")
        .query(&mut c)
        .unwrap();
    let got = first_stream_entries(v);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].1[0].1, "22.0");
    let claimed = entries(
        cmd("XCLAIM")
            .arg("s")
            .arg("g")
            .arg("bob")
            .arg(0)
            .arg("1-1")
            .query(&mut c)
            .unwrap(),
    );
    assert_eq!(claimed[0].1[1], ("unit".to_owned(), "C".to_owned()));
    let ids: Vec<String> = cmd("XCLAIM")
        .arg("s")
        .arg("g")
        .arg("bob")
        .arg(0)
        .arg("1-1")
        .arg("JUSTID")
        .query(&mut c)
        .unwrap();
    assert_eq!(ids, vec!["1-1"]);
    let v: Value = cmd("XAUTOCLAIM")
        .arg("s")
        .arg("g")
        .arg("carol")
        .arg(0)
        .arg("0-0")
        .query(&mut c)
        .unwrap();
    let Value::Array(mut parts) = v else { panic!() };
    let _deleted = parts.pop();
    let auto = entries(parts.pop().unwrap());
    assert_eq!(auto.len(), 2);
    assert_eq!(auto[0].1[0].1, "21.5");
    let acked: i64 = cmd("XACK")
        .arg("s")
        .arg("g")
        .arg("1-1")
        .query(&mut c)
        .unwrap();
    assert_eq!(acked, 1);
    let pending: Value = cmd("XPENDING").arg("s").arg("g").query(&mut c).unwrap();
    assert!(matches!(pending, Value::Array(_)));
    let len: i64 = cmd("XLEN").arg("s").query(&mut c).unwrap();
    assert_eq!(len, 3);

    // XINFO STREAM (first/last entry) and FULL (all entries) decrypt their entries.
    let info: Vec<Value> = cmd("XINFO").arg("STREAM").arg("s").query(&mut c).unwrap();
    let text = format!("{info:?}");
    assert!(
        text.contains("21.5") && text.contains("23.5") && !text.contains("gAAAAA"),
        "{text}"
    );
    let full: Vec<Value> = cmd("XINFO")
        .arg("STREAM")
        .arg("s")
        .arg("FULL")
        .query(&mut c)
        .unwrap();
    let text = format!("{full:?}");
    assert!(text.contains("22.0") && !text.contains("gAAAAA"), "{text}");
    let groups: Value = cmd("XINFO").arg("GROUPS").arg("s").query(&mut c).unwrap();
    assert!(matches!(groups, Value::Array(ref g) if g.len() == 1));

    // Around redcloak: IDs and field names in the clear, values tokens.
    let Frame::Array(raw) = stack
        .direct()
        .cmd(&[b"XRANGE", b"s", b"1-1", b"1-1"])
        .unwrap()
    else {
        panic!()
    };
    let Frame::Array(entry) = &raw[0] else {
        panic!()
    };
    let Frame::Array(fields) = &entry[1] else {
        panic!()
    };
    assert_eq!(fields[0], Frame::Bulk(bytes::Bytes::from_static(b"temp")));
    assert!(matches!(&fields[1], Frame::Bulk(v) if v.starts_with(b"gAAAAA")));
    assert!(stack.assert_all_values_encrypted() >= 4);
}

#[test]
fn xread_block_waits_for_a_new_entry() {
    let stack = Stack::start();
    let mut c = stack.client();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let mut p = stack.client();
            let _: String = cmd("XADD")
                .arg("events")
                .arg("*")
                .arg("kind")
                .arg("login")
                .query(&mut p)
                .unwrap();
        });
        let v: Value = cmd("XREAD")
            .arg("BLOCK")
            .arg(5000)
            .arg("STREAMS")
            .arg("events")
            .arg("$")
            .query(&mut c)
            .unwrap();
        let text = format!("{v:?}");
        assert!(text.contains("login") && !text.contains("gAAAAA"), "{text}");
    });
}
