//! The bundled libraries (`bit`, `cjson`, `cmsgpack`, `struct`) next to real Redis 7.0,
//! with hand-picked cases and random inputs.

mod common;

use common::SideBySide;

/// A small deterministic PRNG (xorshift) for the random cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A Lua string literal for arbitrary bytes.
fn lua_str(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b == b' ' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\{b:03}"));
        }
    }
    s.push('"');
    s
}

fn random_bytes(r: &mut Rng) -> Vec<u8> {
    let len = r.below(12) as usize;
    (0..len)
        .map(|_| match r.below(4) {
            0 => r.below(256) as u8,
            1 => b"\"\\/\n\r\t\x08\x0c\x00\x7f"[r.below(10) as usize],
            _ => b'a' + r.below(26) as u8,
        })
        .collect()
}

fn random_number(r: &mut Rng) -> String {
    match r.below(8) {
        0 => format!("{}", r.below(1000) as i64 - 500),
        1 => format!("{}", r.next() as i64),
        2 => format!("{}.{}", r.below(100000) as i64 - 50000, r.below(1000)),
        3 => format!("{}e{}", r.below(1000), r.below(40) as i64 - 20),
        4 => format!("(1/{})", r.below(97) + 1),
        5 => format!("2^{}", r.below(70)),
        6 => format!("-2^{}", r.below(70)),
        _ => format!("{}", r.below(10)),
    }
}

/// A random Lua value literal (nested up to `depth`).
fn random_value(r: &mut Rng, depth: u32) -> String {
    match r.below(if depth == 0 { 4 } else { 7 }) {
        0 => random_number(r),
        1 => lua_str(&random_bytes(r)),
        2 => ["true", "false"][r.below(2) as usize].to_owned(),
        3 => random_number(r),
        4 => {
            let n = r.below(5);
            let items: Vec<String> = (0..n).map(|_| random_value(r, depth - 1)).collect();
            format!("{{{}}}", items.join(","))
        }
        5 => {
            let n = r.below(5);
            let items: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        "[{}]={}",
                        lua_str(format!("k{i}{}", r.below(100)).as_bytes()),
                        random_value(r, depth - 1)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        _ => {
            // integer keys, possibly sparse
            let n = r.below(5);
            let items: Vec<String> = (0..n)
                .map(|_| format!("[{}]={}", r.below(14), random_value(r, depth - 1)))
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

#[test]
fn bit() {
    let mut s = SideBySide::new();
    s.scripts(&[
        "return {bit.tobit(0xffffffff), bit.tobit(2^32 + 5), bit.tobit(-1), bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-2.5), bit.tobit(2^53)}",
        "return {bit.bnot(0), bit.bnot(-1), bit.bnot(0x12345678)}",
        "return {bit.band(0xff, 0x0f), bit.band(-1, 7, 3), bit.bor(1, 2, 4, 8), bit.bxor(0xff, 0x0f), bit.band(1)}",
        "return {bit.lshift(1, 31), bit.lshift(1, 32), bit.lshift(1, 33), bit.rshift(-1, 1), bit.arshift(-256, 4), bit.rshift(0x80000000, 31)}",
        "return {bit.rol(0x12345678, 4), bit.ror(0x12345678, 4), bit.rol(1, -1), bit.bswap(0x12345678), bit.bswap(-1)}",
        "return {bit.tohex(1), bit.tohex(-1), bit.tohex(0x12345678, 4), bit.tohex(0xabc, -3), bit.tohex(255, 0), bit.tohex(255, 12), bit.tohex(255, -12)}",
        "return bit.band()",
        "return bit.band('x')",
        "return bit.band('7', '3')",
        "return bit.lshift(1)",
        "return bit.tohex({})",
        "return {pcall(bit.bor, nil)}",
    ]);
    let mut r = Rng(0x5eed_0001);
    for _ in 0..60 {
        let a = random_number(&mut r);
        let b = r.below(40) as i64 - 5;
        let script = format!(
            "local a = {a} return {{bit.tobit(a), bit.bnot(a), bit.band(a, {b}), bit.bor(a, {b}), bit.bxor(a, {b}), bit.lshift(a, {b}), bit.rshift(a, {b}), bit.arshift(a, {b}), bit.rol(a, {b}), bit.ror(a, {b}), bit.bswap(a), bit.tohex(a), bit.tohex(a, {b})}}"
        );
        s.eval_as(2, &script, &[], &[]);
    }
    s.assert_clean();
}

#[test]
fn cjson() {
    let mut s = SideBySide::new();
    s.scripts(&[
        "return cjson.encode({})",
        "return cjson.encode({1, 2, 3})",
        "return cjson.encode({a = 1})",
        "return cjson.encode({1, nil, 3})",
        "return cjson.encode({[1] = 1, [2] = 2, [4] = 4})",
        "return cjson.encode({[1] = 1, [20] = 2})",
        "return cjson.encode({[1] = 1, [11] = 2})",
        "return cjson.encode({[1] = 1, [10] = 2})",
        "return cjson.encode({[0] = 1})",
        "return cjson.encode({[1.5] = 1})",
        "return cjson.encode({[true] = 1})",
        "return cjson.encode({[{}] = 1})",
        "return cjson.encode(1.5)",
        "return cjson.encode(0.1)",
        "return cjson.encode(1e300)",
        "return cjson.encode(123456789012345678)",
        "return cjson.encode(-0)",
        "return cjson.encode(0/0)",
        "return cjson.encode(1/0)",
        "return cjson.encode('a\"b\\\\c/d\\n\\r\\t\\b\\f\\0\\1\\127\\128\\255')",
        "return cjson.encode('h\\195\\169llo \\240\\159\\152\\128')",
        "return cjson.encode(function() end)",
        "return cjson.encode()",
        "return cjson.encode(1, 2)",
        "return cjson.encode(cjson.null)",
        "return cjson.encode({cjson.null})",
        "return cjson.encode(true)",
        "return cjson.encode(nil)",
        "local t = {} t[1] = t return cjson.encode(t)",
        "return cjson.encode({a = {b = {c = {}}}})",
        "return cjson.encode({[1] = 'a', x = 'b'})",
        "return cjson.encode({['1'] = 'a'})",
        "return cjson.encode({[-1] = 'a'})",
        "return cjson.encode(coroutine.create(function() end))",
        "return cjson.encode({1, {2, {3}}})",
        "return cjson.encode({a = 1.5, b = 'x', c = true, d = {1, 2}, e = {f = false}})",
        "return cjson.encode({KEYS, ARGV})",
        "return cjson.decode('[1,2,3]')",
        "return cjson.decode('{\"a\":1}').a",
        "return cjson.decode('1.5')",
        "return cjson.decode('\"x\"')",
        "return tostring(cjson.decode('null'))",
        "return cjson.decode('null') == cjson.null",
        "return {cjson.decode('[1,null,3]')[3]}",
        "return cjson.decode('[')",
        "return cjson.decode('')",
        "return cjson.decode('{\"a\":}')",
        "return cjson.decode('{\"a\" 1}')",
        "return cjson.decode('{\"a\":1 \"b\"}')",
        "return cjson.decode('[1 2]')",
        "return cjson.decode('[1,]')",
        "return cjson.decode('tru')",
        "return cjson.decode('1 2')",
        "return cjson.decode('\"\\\\u00e9\\\\ud83d\\\\ude00\"')",
        "return cjson.decode('\"\\\\x\"')",
        "return cjson.decode('\"abc')",
        "return cjson.decode('\"\\\\u12\"')",
        "return cjson.decode('\"\\\\ud83d\"')",
        "return cjson.decode('nan')",
        "return cjson.decode('0x10')",
        "return cjson.decode('1e400')",
        "return cjson.decode('-0')",
        "return cjson.decode('01')",
        "return cjson.decode('.5')",
        "return cjson.decode('-')",
        "return cjson.decode('Infinity')",
        "return cjson.decode('  [ 1 , 2 ]  ')",
        "return cjson.decode('{\"a\":1,\"a\":2}').a",
        "return cjson.decode('{1:2}')",
        "return cjson.decode(1)",
        "return cjson.decode()",
        "return cjson.decode({})",
        "return cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))",
        "return #cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000))",
        "return cjson.decode('\"a\\nb\"')",
        "return cjson.decode('\"\\\\/\"')",
        "return cjson.decode('123456789012345678901234567890')",
        "return tostring(getmetatable(cjson.decode('[]')))",
        "return cjson.decode_array_with_array_mt",
        "return {cjson.encode_number_precision()}",
        "return {cjson.encode_sparse_array()}",
        "return {cjson.decode_invalid_numbers()}",
        "return {cjson.encode_invalid_numbers()}",
        "return {cjson.decode_max_depth()}",
        "return {cjson.encode_max_depth()}",
        "return {cjson.encode_keep_buffer()}",
        "return cjson._NAME .. ' ' .. cjson._VERSION",
        "return type(cjson.new)",
        "return cjson.new().encode({1})",
        "local c = cjson.new() c.encode_number_precision(3) return {c.encode(1/3), cjson.encode(1/3)}",
        "local c = cjson.new() c.encode_sparse_array(true) return c.encode({[1] = 1, [20] = 2})",
        "local c = cjson.new() c.encode_invalid_numbers(true) return c.encode({1/0, -1/0})",
        "local c = cjson.new() c.encode_invalid_numbers('null') return c.encode({1/0})",
        "local c = cjson.new() c.encode_max_depth(2) return c.encode({{{}}})",
        "local c = cjson.new() c.decode_max_depth(2) return c.decode('[[[]]]')",
        "local c = cjson.new() c.decode_invalid_numbers(false) return c.decode('0x10')",
        "return cjson.decode('\"\\\\u0000\"')",
        "return cjson.decode('[true,false]')",
        "return cjson.decode('\"\\t\"')",
        "local t = cjson.decode('{\"b\":2,\"a\":1,\"c\":[1,2,{\"d\":null}]}') return cjson.encode(t)",
        // Lua stack limits, past the configured depths
        "cjson.decode_max_depth(100000) local ok, e = pcall(cjson.decode, string.rep('[', 7998) .. '1' .. string.rep(']', 7998)) cjson.decode_max_depth(1000) return {tostring(ok), type(e)}",
        "cjson.decode_max_depth(100000) local ok, e = pcall(cjson.decode, string.rep('[', 7999) .. '1' .. string.rep(']', 7999)) cjson.decode_max_depth(1000) return {tostring(ok), e}",
        "cjson.decode_max_depth(100000) local ok, e = pcall(cjson.decode, string.rep('{\"a\":', 3999) .. '1' .. string.rep('}', 3999)) cjson.decode_max_depth(1000) return {tostring(ok), type(e)}",
        "cjson.decode_max_depth(100000) local ok, e = pcall(cjson.decode, string.rep('{\"a\":', 4000) .. '1' .. string.rep('}', 4000)) cjson.decode_max_depth(1000) return {tostring(ok), e}",
        "cjson.encode_max_depth(100000) local t = {} local c = t for i = 1, 7997 do c[1] = {} c = c[1] end local ok, e = pcall(cjson.encode, t) cjson.encode_max_depth(1000) return {tostring(ok), #e}",
        "cjson.encode_max_depth(100000) local t = {} local c = t for i = 1, 7998 do c[1] = {} c = c[1] end local ok, e = pcall(cjson.encode, t) cjson.encode_max_depth(1000) return {tostring(ok), e}",
        "local t = {} for i = 1, 10000 do t[i] = 'v' .. i end return #cjson.encode(t)",
        "local t = {} for i = 1, 10000 do t['k' .. i] = i end return #cjson.encode(t)",
        "local t = {} for i = 1, 10000 do t[i] = i end return #cjson.encode(cjson.decode(cjson.encode(t)))",
    ]);
    s.eval("return cjson.encode({KEYS, ARGV})", &["k"], &["v", "w"]);
    // random JSON-ish text: the same values or the same error (message and position)
    let alphabet = b"[]{}:,\"\\ 0123456789aeEtrufnlsxI-+.u/";
    let mut r = Rng(0x5eed_0006);
    for _ in 0..400 {
        let len = r.below(14) as usize;
        let text: Vec<u8> = (0..len)
            .map(|_| alphabet[r.below(alphabet.len() as u64) as usize])
            .collect();
        s.eval_as(2, &format!("local ok, v = pcall(cjson.decode, {}) if not ok then return v end return {{pcall(cjson.encode, v)}}", lua_str(&text)), &[], &[]);
    }
    let mut r = Rng(0x5eed_0002);
    for _ in 0..300 {
        let v = random_value(&mut r, 3);
        s.eval_as(2, &format!("return cjson.encode({v})"), &[], &[]);
        s.eval_as(2, &format!("local ok, j = pcall(cjson.encode, {v}) if not ok then return j end return cjson.encode(cjson.decode(j))"), &[], &[]);
    }
    s.assert_clean();
}

#[test]
fn cmsgpack() {
    let mut s = SideBySide::new();
    s.scripts(&[
        "return cmsgpack.pack(nil, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 2^32-1, 2^32, 2^53, -1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31-1, -2^53)",
        "return cmsgpack.pack(1.5, 0.1, -0.0, 1/0, -1/0, 0/0, -(0/0), 2^63, -2^63, 2^64, 1e300, 3.4e38, 1e-46)",
        "return cmsgpack.pack('', 'a', string.rep('x', 31), string.rep('x', 32), string.rep('x', 255), string.rep('x', 256))",
        "return #cmsgpack.pack(string.rep('x', 65535)) .. ' ' .. #cmsgpack.pack(string.rep('x', 65536))",
        "return cmsgpack.pack({})",
        "return cmsgpack.pack({1, 2, 3})",
        "return cmsgpack.pack({a = 1})",
        "return cmsgpack.pack({1, nil, 3})",
        "return cmsgpack.pack({[2] = 1})",
        "return cmsgpack.pack({[1] = 1, [2] = 2, x = 3})",
        "return cmsgpack.pack({[1.5] = 1, [true] = 2, [0] = 3, [-1] = 4})",
        "local t = {} for i = 1, 20 do t[i] = i end return cmsgpack.pack(t)",
        "local t = {} for i = 1, 70000 do t[i] = i % 7 end return #cmsgpack.pack(t)",
        "local t = {} for i = 1, 20 do t['k' .. i] = i end return #cmsgpack.pack(t)",
        "local t = {} for i = 1, 300 do t['k' .. i] = i end return cmsgpack.pack(cmsgpack.unpack(cmsgpack.pack(t)))",
        "local t = {} for i = 1, 300 do t['k' .. i] = i end return cjson.encode(cjson.decode(cjson.encode(t)))",
        "local t = {} for i = 1, 300 do t['k' .. i] = i end return cjson.encode(cmsgpack.unpack(cmsgpack.pack(t)))",
        "return cmsgpack.pack(function() end)",
        "return cmsgpack.pack(cjson.null)",
        "return cmsgpack.pack()",
        "local t = {} t[1] = t return cmsgpack.pack(t)",
        "return cmsgpack.pack({{{{{{{{{{{{{{{{{{{{1}}}}}}}}}}}}}}}}}}}})",
        "return {cmsgpack.unpack(cmsgpack.pack(1, 'a', {1, 2}, {a = 1}))}",
        "return cmsgpack.unpack(cmsgpack.pack({a = 1})).a",
        "return {cmsgpack.unpack('')}",
        "return cmsgpack.unpack('\\205')",
        "return cmsgpack.unpack('\\193')",
        "return cmsgpack.unpack()",
        "return cmsgpack.unpack({})",
        "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3))}",
        "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 1)}",
        "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 2)}",
        "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 3)}",
        "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)}",
        "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 1)}",
        "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0)}",
        "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), -1)}",
        "return {cmsgpack.unpack_one('')}",
        "return cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255')",
        "return tostring(cmsgpack.unpack('\\203\\0\\0\\0\\0\\0\\0\\240\\63'))",
        "return tostring(cmsgpack.unpack('\\202\\127\\128\\0\\0'))",
        "return cmsgpack.unpack('\\196\\2ab')",
        "return cmsgpack.unpack('\\199\\1\\5a')",
        "return cmsgpack.unpack('\\212\\1a')",
        "return {cmsgpack.unpack('\\129\\192\\1')}",
        "return {cmsgpack.unpack('\\145')}",
        "return {cmsgpack.unpack('\\220\\0')}",
        "return {cmsgpack.unpack('\\220\\0\\1\\1')}",
        "return {cmsgpack.unpack('\\217\\3ab')}",
        "return {cmsgpack.unpack('\\146\\1\\192')}",
        "return {cmsgpack.unpack('\\130\\1\\192\\2\\3')}",
        "return {cmsgpack.unpack('\\208\\255\\209\\255\\254\\210\\255\\255\\255\\253\\211\\255\\255\\255\\255\\255\\255\\255\\252')}",
        "return {cmsgpack.unpack('\\204\\200\\205\\1\\0\\206\\0\\1\\0\\0')}",
        "return cmsgpack._NAME .. ' ' .. cmsgpack._VERSION",
        "return cmsgpack.unpack_one('\\1', -1)",
        "return {cmsgpack.unpack_one('\\1\\2', 5)}",
        "return {cmsgpack.unpack_one('\\1\\2', 2)}",
        // Lua stack limits
        "local ok, e = pcall(cmsgpack.unpack, string.rep('\\145', 3999) .. '\\1') return {tostring(ok), type(e)}",
        "local ok, e = pcall(cmsgpack.unpack, string.rep('\\145', 4000) .. '\\1') return {tostring(ok), e}",
        "local ok, e = pcall(cmsgpack.unpack, string.rep('\\129\\1', 3999) .. '\\1') return {tostring(ok), type(e)}",
        "local ok, e = pcall(cmsgpack.unpack, string.rep('\\129\\1', 4000) .. '\\1') return {tostring(ok), e}",
        "return cmsgpack.unpack(string.rep('\\145', 4000) .. '\\1')",
        "return select('#', cmsgpack.unpack(string.rep('\\1', 7899)))",
        "return select('#', cmsgpack.unpack(string.rep('\\161a', 5000)))",
        "local t = {} for i = 1, 10000 do t[i] = 'v' .. i end return #cmsgpack.pack(t)",
        "local t = {} for i = 1, 10000 do t['k' .. i] = i end return #cmsgpack.pack(t)",
    ]);
    let mut r = Rng(0x5eed_0003);
    for _ in 0..300 {
        let v = random_value(&mut r, 3);
        s.eval_as(2, &format!("return cmsgpack.pack({v})"), &[], &[]);
        s.eval_as(
            2,
            &format!("return cmsgpack.pack(cmsgpack.unpack(cmsgpack.pack({v}, {v})))"),
            &[],
            &[],
        );
    }
    // random bytes into unpack: same values or the same error
    for _ in 0..300 {
        let len = r.below(10) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| r.below(256) as u8).collect();
        s.eval_as(
            2,
            &format!(
                "return cjson.encode({{pcall(cmsgpack.unpack, {})}})",
                lua_str(&bytes)
            ),
            &[],
            &[],
        );
    }
    s.assert_clean();
}

#[test]
fn structlib() {
    let mut s = SideBySide::new();
    s.scripts(&[
        "return struct.pack('>I2', 258)",
        "return struct.pack('<I2', 258)",
        "return struct.pack('bBhHlLT', -1, 255, -2, 65535, -3, 7, 9)",
        "return struct.pack('>i3', -2)",
        "return struct.pack('i', 2^31)",
        "return struct.pack('I8', -1)",
        "return {struct.pack('L', 0/0), struct.pack('L', 1/0), struct.pack('l', -1/0), struct.pack('L', 2^63), struct.pack('L', 2^64), struct.pack('i', 2^40)}",
        "return struct.pack('>I16', 1)",
        "return struct.pack('<i16', -1)",
        "return struct.pack('i33', 1)",
        "return struct.pack('f', 1.5)",
        "return struct.pack('>d', 0.1)",
        "return struct.pack('c5', 'hello world')",
        "return struct.pack('c0', 'whole')",
        "return struct.pack('c10', 'short')",
        "return struct.pack('s', 'zero')",
        "return struct.pack('x>!4bi', 1, 2)",
        "return struct.pack('!bd', 1, 2)",
        "return struct.pack('!2bi', 1, 2)",
        "return struct.pack('!3b', 1)",
        "return struct.pack('z', 1)",
        "return struct.pack('i', 'x')",
        "return struct.pack('i')",
        "return struct.pack()",
        "return struct.pack(' > i2 ', 1)",
        "return struct.pack('=i', 1)",
        "return {struct.unpack('>I2', '\\1\\2')}",
        "return {struct.unpack('<i2', '\\255\\255')}",
        "return {struct.unpack('bBhH', '\\255\\255\\254\\255\\255\\255')}",
        "return {struct.unpack('i', '\\1\\2')}",
        "return {struct.unpack('c3', 'abcdef')}",
        "return {struct.unpack('c3', 'abcdef', 3)}",
        "return {struct.unpack('c3', 'abcdef', 0)}",
        "return {struct.unpack('c3', 'abcdef', 8)}",
        "return {struct.unpack('Bc0', '\\3abcd')}",
        "return {struct.unpack('c0', 'abcd')}",
        "return {struct.unpack('s', 'ab\\0cd')}",
        "return {struct.unpack('ss', 'ab\\0cd')}",
        "return {struct.unpack('>d', struct.pack('>d', 0.1))}",
        "return tostring(struct.unpack('f', struct.pack('f', 0.1)))",
        "return {struct.unpack('!4bi', struct.pack('!4bi', 1, 2))}",
        "return {struct.unpack('>I16', struct.pack('>I16', 5))}",
        "return {struct.unpack('<i16', struct.pack('<i16', -5))}",
        "return {struct.unpack('>i9', '\\255\\255\\255\\255\\255\\255\\255\\255\\254')}",
        "return {struct.unpack('z', 'a')}",
        "return struct.size('bhilfd')",
        "return struct.size('!bhilfd')",
        "return struct.size('c10i3')",
        "return struct.size('s')",
        "return struct.size('c0')",
        "return struct.size('z')",
        "return struct.size('>!2 bi')",
        "return struct.size('i99')",
        "return struct.size('i99999999999')",
        "return select('#', struct.unpack(string.rep('b', 7899), string.rep('x', 7899)))",
        "return select('#', struct.unpack(string.rep('c1', 5000), string.rep('x', 5000)))",
    ]);
    let mut r = Rng(0x5eed_0004);
    let opts = [
        "b", "B", "h", "H", "i", "I", "l", "L", "i3", "I5", "i7", "d", "f", "c4", ">", "<", "!4",
        "x",
    ];
    for _ in 0..400 {
        let n = r.below(5) + 1;
        let mut fmt = String::new();
        let mut vals = Vec::new();
        for _ in 0..n {
            let o = opts[r.below(opts.len() as u64) as usize];
            fmt.push_str(o);
            match o {
                ">" | "<" | "!4" | "x" => {}
                "c4" => vals.push(lua_str(&random_bytes(&mut r))),
                _ => vals.push(random_number(&mut r)),
            }
        }
        let args = if vals.is_empty() {
            String::new()
        } else {
            format!(", {}", vals.join(", "))
        };
        s.eval_as(2, &format!("local ok, p = pcall(struct.pack, '{fmt}'{args}) if not ok then return p end return {{p, struct.size('{fmt}'), cjson.encode({{struct.unpack('{fmt}', p)}})}}"), &[], &[]);
    }
    s.assert_clean();
}

/// Random Lua values returned as replies (RESP2 and RESP3, with and without setresp(3)),
/// and written then read back through Redis commands.
#[test]
fn random_replies() {
    let mut s = SideBySide::new();
    let mut r = Rng(0x5eed_0005);
    for i in 0..250 {
        let v = random_value(&mut r, 3);
        s.eval(&format!("return {v}"), &[], &[]);
        if i % 5 == 0 {
            s.eval(&format!("redis.setresp(3) return {v}"), &[], &[]);
            s.eval(&format!("return {{map = {v}, double = nil}}"), &[], &[]);
        }
        let n = random_number(&mut r);
        s.eval(
            &format!("redis.call('set', 'k', {n}) return redis.call('get', 'k')"),
            &[],
            &[],
        );
        s.eval_as(2, &format!("return {{redis.sha1hex({n}), tostring({n}), cjson.encode({{[{n}] = 1}}), redis.call('echo', {n})}}"), &[], &[]);
    }
    s.assert_clean();
}
