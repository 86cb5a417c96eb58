//! FUNCTION LOAD / LIST / DELETE / STATS and FCALL next to real Redis 7.0.

mod common;

use common::SideBySide;

fn flush(s: &mut SideBySide) {
    s.engine.function_flush();
    s.b2.cmd(&["FUNCTION", "FLUSH"]);
}

#[test]
fn load_errors() {
    let mut s = SideBySide::new();
    let libs = [
        "#!lua name=l1\nredis.register_function('f', function(k, a) return 1 end)",
        "#!lua name=l1\nredis.register_function('f', function(k, a) return 1 end)",
        "#!lua name=l2\nreturn 1",
        "#!lua name=l3\nredis.call('get', 'a')",
        "#!lua name=l4\nlocal t = {} for k, v in pairs(redis) do t[#t+1] = k end",
        "#!lua name=l8\nreturn x",
        "#!lua name=l9\nx = 1",
        "#!lua name=1bad-name\nredis.register_function('f', function() end)",
        "#!lua\nredis.register_function('f', function() end)",
        "#!lua name=l10\nredis.register_function('f', function() end)",
        "#!lua name=l11\nredis.register_function('bad name', function() end)",
        "#!lua name=l12\nredis.register_function('f12')",
        "#!lua name=l13\nredis.register_function{function_name='f13', callback=function() end, flags={'bad'}}",
        "#!lua name=l14\nredis.register_function{function_name='f14', callback=function() end, other=1}",
        "#!lua name=l15 foo=bar\nredis.register_function('f15', function() end)",
        "#!lua name=l17\nredis.register_function('f17', function() end) redis.register_function('f17', function() end)",
        "#!lua name=l18\nreturn (",
        "#!lua name=l19\nredis.setresp(3) redis.register_function('f19', function() end)",
        "#!lua name=l20\nlocal a = math.random() redis.register_function('f20', function() end)",
        "#!lua name=l21\nerror('boom')",
        "#!lua name=l22\nredis.register_function('a-b', function() return 1 end)",
        "#!lua name=l23\nredis.register_function('', function() return 1 end)",
        "#!lua name=l24\nredis.register_function('zz', 1)",
        "#!lua name=l25\nredis.register_function('zz', function() end, 1)",
        "#!lua name=l26\nredis.register_function{function_name='zz'}",
        "#!lua name=l27\nredis.register_function{callback=function() end}",
        "#!lua name=l28\nredis.register_function{function_name='zz', callback=function() end, flags='no-writes'}",
        "#!lua name=l29\nredis.register_function{function_name='zz', callback=function() end, description=1}",
        "#!lua name=l30\nredis.register_function{function_name=1, callback=function() end}",
        "#!lua name=l31\nredis.register_function{function_name='zz', callback=1}",
        "#!lua name=l32\nredis.register_function()",
        "#!lua name=l33\nredis.register_function({}, function() end)",
        "#!lua name=lw name=lv\nredis.register_function('zz3', function() end)",
        "#!luax name=lw\nredis.register_function('zz3', function() end)",
        "#!LUA name=lupper\nredis.register_function('upper', function() return 'up' end)",
        "#!lua name=lw",
        "return 1",
        "#!lua name=lx\nlocal x = redis.log(redis.LOG_WARNING, 'loading')\nredis.register_function('lx', function() return 1 end)",
        "#!lua name=ly\nredis.register_function('ly', function() return 1 end)\nreturn 5",
        "#!lua name=lv\nlocal v = redis.REDIS_VERSION .. redis.REDIS_VERSION_NUM redis.register_function('lv', function() return 1 end)",
        "#!lua name=lnum\nredis.register_function(1, function() return 'one' end)",
        "#!lua name=lload\nlocal ok = redis.call\n",
        "#!lua name=lload2\nredis.register_function('x', function() end) redis.pcall('get', 'x')",
    ];
    for lib in libs {
        s.load(lib, false);
    }
    s.load(
        "#!lua name=l1\nredis.register_function('f_new', function() return 2 end)",
        true,
    );
    s.load(
        "#!lua name=l40\nredis.register_function('f_new', function() return 2 end)",
        false,
    );
    s.fcall("f", &[], &[], false);
    s.fcall("f_new", &[], &[], false);
    s.fcall("1", &[], &[], false);
    s.fcall("upper", &[], &[], false);
    s.assert_clean();
}

#[test]
fn fcall_and_list() {
    let mut s = SideBySide::new();
    flush(&mut s);
    s.both(&["FLUSHALL"]);
    s.both(&["SET", "s", "str"]);
    s.load(
        "#!lua name=lib\n\
         redis.register_function('echo', function(keys, args) return {keys, args} end)\n\
         redis.register_function{function_name='ro', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n\
         redis.register_function('rw', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n\
         redis.register_function('err', function(keys, args) error('boom') end)\n\
         redis.register_function('glob', function() return x end)\n\
         redis.register_function('nocmd', function() return redis.call('nosuch') end)\n\
         redis.register_function('g', function() local t = {} for k, v in pairs(_G) do t[#t+1] = k .. '=' .. type(v) end table.sort(t) return t end)\n\
         redis.register_function('r', function() local t = {} for k, v in pairs(redis) do t[#t+1] = k end table.sort(t) return t end)\n\
         redis.register_function('reg', function() return redis.register_function('x', function() end) end)\n\
         redis.register_function('resp', function() redis.setresp(3) return redis.call('hgetall', 'nokey') end)\n\
         redis.register_function('keysglobal', function() return KEYS end)\n\
         redis.register_function('rnd', function() return math.random(1000) end)\n\
         redis.register_function{function_name='all', callback=function() return 1 end, flags={'no-writes','allow-oom','allow-stale','no-cluster','allow-cross-slot-keys'}}",
        false,
    );
    s.fcall("echo", &["k1", "k2"], &["a1"], false);
    s.fcall("echo", &[], &[], false);
    s.fcall("ro", &["s"], &[], false);
    s.fcall("ro", &["s"], &[], true);
    s.fcall("rw", &["k"], &["v"], false);
    s.fcall("rw", &["k"], &["v"], true);
    s.fcall("err", &[], &[], false);
    s.fcall("glob", &[], &[], false);
    s.fcall("nocmd", &[], &[], false);
    s.fcall("g", &[], &[], false);
    s.fcall("r", &[], &[], false);
    s.fcall("reg", &[], &[], false);
    s.fcall("resp", &[], &[], false);
    s.fcall("keysglobal", &[], &[], false);
    s.fcall("rnd", &[], &[], false);
    s.fcall("all", &[], &[], true);
    s.fcall("nosuch", &[], &[], false);
    let ours = s.engine.function_delete(b"nolib");
    s.compare(
        "FUNCTION DELETE nolib",
        2,
        &ours,
        &[b"FUNCTION", b"DELETE", b"nolib"],
    );
    let ours = s.engine.function_delete(b"lib");
    s.compare(
        "FUNCTION DELETE lib",
        2,
        &ours,
        &[b"FUNCTION", b"DELETE", b"lib"],
    );
    s.fcall("echo", &[], &[], false);
    s.assert_clean();
}

/// Redis lists functions in its hash table's order (seeded at random at start), so the list
/// is compared on libraries of one function each.
#[test]
fn list_and_stats() {
    let mut s = SideBySide::new();
    flush(&mut s);
    s.load("#!lua name=alpha\nredis.register_function{function_name='a1', callback=function() return 1 end, flags={'no-writes','allow-oom','allow-stale','no-cluster','allow-cross-slot-keys'}, description='all flags'}", false);
    let check = |s: &mut SideBySide| {
        for resp in [2u8, 3] {
            let ours = s.engine.function_list(None, false, resp);
            s.compare("FUNCTION LIST", resp, &ours, &[b"FUNCTION", b"LIST"]);
            let ours = s.engine.function_list(None, true, resp);
            s.compare(
                "FUNCTION LIST WITHCODE",
                resp,
                &ours,
                &[b"FUNCTION", b"LIST", b"WITHCODE"],
            );
            let ours = s.engine.function_list(Some(b"a*"), true, resp);
            s.compare(
                "FUNCTION LIST LIBRARYNAME a* WITHCODE",
                resp,
                &ours,
                &[b"FUNCTION", b"LIST", b"LIBRARYNAME", b"a*", b"WITHCODE"],
            );
            let ours = s.engine.function_list(Some(b"nomatch"), false, resp);
            s.compare(
                "FUNCTION LIST LIBRARYNAME nomatch",
                resp,
                &ours,
                &[b"FUNCTION", b"LIST", b"LIBRARYNAME", b"nomatch"],
            );
            let ours = s.engine.function_stats(resp);
            s.compare("FUNCTION STATS", resp, &ours, &[b"FUNCTION", b"STATS"]);
        }
    };
    check(&mut s);
    s.load(
        "#!lua name=beta\nredis.register_function('b1', function() return 2 end)",
        false,
    );
    for resp in [2u8, 3] {
        let ours = s.engine.function_list(Some(b"b*"), true, resp);
        s.compare(
            "FUNCTION LIST LIBRARYNAME b*",
            resp,
            &ours,
            &[b"FUNCTION", b"LIST", b"LIBRARYNAME", b"b*", b"WITHCODE"],
        );
        let ours = s.engine.function_stats(resp);
        s.compare("FUNCTION STATS", resp, &ours, &[b"FUNCTION", b"STATS"]);
    }
    let ours = s.engine.function_delete(b"alpha");
    s.compare(
        "FUNCTION DELETE alpha",
        2,
        &ours,
        &[b"FUNCTION", b"DELETE", b"alpha"],
    );
    check(&mut s);
    flush(&mut s);
    check(&mut s);
    s.assert_clean();
}
