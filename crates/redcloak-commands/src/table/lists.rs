//! List commands: elements are values.
use super::{
    emulated, forward, pass, Bind, CommandSpec, Family::Lists, Pops, Shape::*, ValueArgs::*,
};

pub(super) const COMMANDS: &[CommandSpec] = &[
    forward("LPUSH", -3, From(2), &Pass, Lists),
    forward("RPUSH", -3, From(2), &Pass, Lists),
    forward("LPUSHX", -3, From(2), &Pass, Lists),
    forward("RPUSHX", -3, From(2), &Pass, Lists),
    forward("LSET", 4, At(3), &Pass, Lists),
    // With a count the reply is an array, without it a bulk: Values covers both.
    forward("LPOP", -2, None, &Values, Lists).pops(Pops::Head),
    forward("RPOP", -2, None, &Values, Lists).pops(Pops::Tail),
    forward("LRANGE", 4, None, &Values, Lists),
    forward("LINDEX", 3, None, &Value, Lists),
    // [key, [element, …]] or nil
    forward("LMPOP", -4, None, &Keyed(&Values), Lists).pops(Pops::Multi),
    forward("BLMPOP", -5, None, &Keyed(&Values), Lists).pops(Pops::Multi),
    // [key, element] or nil
    forward("BLPOP", -3, None, &Keyed(&Value), Lists).pops(Pops::KeyedHead),
    forward("BRPOP", -3, None, &Keyed(&Value), Lists).pops(Pops::KeyedTail),
    forward("LMOVE", 5, None, &Value, Lists).bind(Bind::Moves),
    forward("BLMOVE", 6, None, &Value, Lists).bind(Bind::Moves),
    forward("RPOPLPUSH", 3, None, &Value, Lists).bind(Bind::Moves),
    forward("BRPOPLPUSH", 4, None, &Value, Lists).bind(Bind::Moves),
    pass("LLEN", 2, Lists),
    pass("LTRIM", 4, Lists),
    emulated("LPOS", -3, Lists),
    emulated("LREM", 4, Lists),
    emulated("LINSERT", 5, Lists),
];
