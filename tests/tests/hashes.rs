//! Hashes through redcloak: field values encrypted, field names kept.

use std::collections::HashMap;

use redcloak_commands::resp::Frame;
use redcloak_e2e::Stack;
use redis::cmd;

#[test]
fn hash_commands_round_trip_and_store_ciphertext() {
    let stack = Stack::start();
    let mut c = stack.client();
    let n: i64 = cmd("HSET")
        .arg("user:1")
        .arg("name")
        .arg("Ada")
        .arg("email")
        .arg("ada@example.com")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let _: () = cmd("HMSET")
        .arg("user:1")
        .arg("city")
        .arg("London")
        .query(&mut c)
        .unwrap();
    let n: i64 = cmd("HSETNX")
        .arg("user:1")
        .arg("name")
        .arg("other")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = cmd("HSETNX")
        .arg("user:1")
        .arg("born")
        .arg("1815")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);

    let name: String = cmd("HGET").arg("user:1").arg("name").query(&mut c).unwrap();
    assert_eq!(name, "Ada");
    let missing: Option<String> = cmd("HGET").arg("user:1").arg("nope").query(&mut c).unwrap();
    assert_eq!(missing, None);
    let got: Vec<Option<String>> = cmd("HMGET")
        .arg("user:1")
        .arg("name")
        .arg("nope")
        .arg("city")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, vec![Some("Ada".into()), None, Some("London".into())]);
    let all: HashMap<String, String> = cmd("HGETALL").arg("user:1").query(&mut c).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        (
            all["name"].as_str(),
            all["email"].as_str(),
            all["city"].as_str(),
            all["born"].as_str()
        ),
        ("Ada", "ada@example.com", "London", "1815")
    );
    let mut vals: Vec<String> = cmd("HVALS").arg("user:1").query(&mut c).unwrap();
    vals.sort();
    assert_eq!(vals, vec!["1815", "Ada", "London", "ada@example.com"]);
    let mut keys: Vec<String> = cmd("HKEYS").arg("user:1").query(&mut c).unwrap();
    keys.sort();
    assert_eq!(keys, vec!["born", "city", "email", "name"]);
    let len: i64 = cmd("HLEN").arg("user:1").query(&mut c).unwrap();
    assert_eq!(len, 4);
    let exists: i64 = cmd("HEXISTS")
        .arg("user:1")
        .arg("city")
        .query(&mut c)
        .unwrap();
    assert_eq!(exists, 1);

    // HRANDFIELD: fields only, then with values.
    let field: String = cmd("HRANDFIELD").arg("user:1").query(&mut c).unwrap();
    assert!(all.contains_key(&field));
    let fields: Vec<String> = cmd("HRANDFIELD")
        .arg("user:1")
        .arg(2)
        .query(&mut c)
        .unwrap();
    assert!(fields.iter().all(|f| all.contains_key(f)));
    let with: Vec<String> = cmd("HRANDFIELD")
        .arg("user:1")
        .arg(-3)
        .arg("WITHVALUES")
        .query(&mut c)
        .unwrap();
    assert_eq!(with.len(), 6);
    for pair in with.chunks(2) {
        assert_eq!(
            all[&pair[0]], pair[1],
            "HRANDFIELD WITHVALUES decrypts values"
        );
    }

    // HSCAN: fields kept, values decrypted.
    let (cursor, flat): (String, Vec<String>) = cmd("HSCAN")
        .arg("user:1")
        .arg(0)
        .arg("COUNT")
        .arg(100)
        .query(&mut c)
        .unwrap();
    assert_eq!(cursor, "0");
    let scanned: HashMap<_, _> = flat
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert_eq!(scanned, all);

    // Computed by redcloak on the decrypted value (Redis would compute on ciphertext).
    let born: i64 = cmd("HINCRBY")
        .arg("user:1")
        .arg("born")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!(born, 1816);
    let n: i64 = cmd("HDEL").arg("user:1").arg("born").query(&mut c).unwrap();
    assert_eq!(n, 1);

    // Around redcloak: field names in the clear, every value a token.
    let Frame::Array(raw) = stack.direct().cmd(&[b"HGETALL", b"user:1"]).unwrap() else {
        panic!()
    };
    assert_eq!(raw.len(), 6);
    for pair in raw.chunks(2) {
        let (Frame::Bulk(field), Frame::Bulk(value)) = (&pair[0], &pair[1]) else {
            panic!()
        };
        assert!(
            all.contains_key(std::str::from_utf8(field).unwrap()),
            "field names are kept"
        );
        assert!(value.starts_with(b"gAAAAA"));
    }
    assert!(stack.assert_all_values_encrypted() >= 3);
}
