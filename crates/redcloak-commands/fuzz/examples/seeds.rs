//! Writes a seed corpus for the `encode_request` target: one input per row of the table, plus
//! the inputs that reach the option-parsing corners (numkeys, XADD options with NULs).
//!
//! `cargo run --manifest-path crates/redcloak-commands/fuzz/Cargo.toml --example seeds`
//! (`make fuzz` does it before fuzzing).

use redcloak_commands_fuzz::rows;

/// The input that `encode_request` decodes into row `index` with `args` (after the name).
fn input(index: usize, args: &[&[u8]]) -> Vec<u8> {
    let n = rows().len();
    // `Input::below(n)` reads two bytes big-endian and takes them modulo n.
    let mut v = vec![
        (index >> 8) as u8,
        (index & 0xff) as u8,
        0,
        args.len() as u8,
    ];
    let _ = n;
    for a in args {
        v.push(a.len() as u8);
        v.extend_from_slice(a);
    }
    v
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/encode_request");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let special: &[(&str, &[&[u8]])] = &[
        ("LMPOP", &[b"9223372036854775807", b"k", b"LEFT"]),
        ("BLMPOP", &[b"0", b"9223372036854775807", b"k", b"LEFT"]),
        ("XADD", &[b"s", b"NOMKSTREAM\0", b"*", b"f", b"v"]),
        ("XADD", &[b"s", b"maxLEN\0", b"~", b"5", b"*", b"f", b"v"]),
        ("HRANDFIELD", &[b"h", b"3", b"WITHVALUES\0"]),
        ("SET", &[b"k", b"v", b"GET\0"]),
        ("MSET", &[b"a", b"1", b"b", b"2"]),
        ("RESTORE", &[b"k", b"0", b"payload"]),
    ];
    let mut written = 0;
    for (i, (spec, parent)) in rows().iter().enumerate() {
        let base: &[&[u8]] = &[b"k", b"v", b"f", b"w"];
        let name = match parent {
            Some(p) => format!("{}-{}", p.name, spec.name),
            None => spec.name.to_owned(),
        };
        std::fs::write(dir.join(format!("row-{name}")), input(i, base)).expect("seed");
        written += 1;
        for (s, args) in special {
            if parent.is_none() && spec.name == *s {
                std::fs::write(dir.join(format!("special-{s}-{written}")), input(i, args))
                    .expect("seed");
                written += 1;
            }
        }
    }
    println!("{written} seeds in {}", dir.display());
}
