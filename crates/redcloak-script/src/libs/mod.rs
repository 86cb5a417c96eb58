//! The libraries Redis bundles into its Lua state, written for redcloak (no code taken from
//! Redis or from the original C libraries): `bit`, `cjson`, `cmsgpack`, `struct`.

use mlua::{FromLua, IntoLua, Lua, Table, Value};

mod bit;
mod cjson;
mod cmsgpack;
mod structlib;

/// Installs the libraries as globals of the real globals table (the prelude then makes them
/// read-only).
pub(crate) fn install(lua: &Lua, real_g: &Table) -> mlua::Result<()> {
    real_g.raw_set("bit", bit::create(lua)?)?;
    real_g.raw_set("cjson", cjson::create(lua)?)?;
    real_g.raw_set("cmsgpack", cmsgpack::create(lua)?)?;
    real_g.raw_set("struct", structlib::create(lua)?)?;
    Ok(())
}

/// A stack of Lua values kept in a Lua table. Values held from Rust each take a slot of
/// mlua's reference stack (about 8000 in all, and running out is a panic), so the libraries
/// keep their open containers (which may be thousands deep) here instead.
pub(crate) struct RefStack {
    t: Table,
    len: usize,
}

impl RefStack {
    pub(crate) fn new(lua: &Lua) -> mlua::Result<RefStack> {
        Ok(RefStack {
            t: lua.create_table()?,
            len: 0,
        })
    }

    pub(crate) fn push(&mut self, v: impl IntoLua) -> mlua::Result<()> {
        self.len += 1;
        self.t.raw_set(self.len, v)
    }

    pub(crate) fn pop<V: FromLua>(&mut self) -> mlua::Result<V> {
        let v = self.t.raw_get(self.len)?;
        self.t.raw_set(self.len, Value::Nil)?;
        self.len -= 1;
        Ok(v)
    }

    pub(crate) fn top<V: FromLua>(&self) -> mlua::Result<V> {
        self.t.raw_get(self.len)
    }

    pub(crate) fn set_top(&self, v: impl IntoLua) -> mlua::Result<()> {
        self.t.raw_set(self.len, v)
    }
}

/// Most values a library function returns at once. Redis's limit is its Lua stack (7999
/// for `cmsgpack.unpack`, 7997 for `struct.unpack`); mlua needs a little of that stack for
/// itself.
pub(crate) const MAX_RESULTS: usize = 7900;

/// Most values holding references (strings, tables) a library function returns at once;
/// see [`RefStack`] for why (Redis's own limit is Lua's stack, about 8000 values).
pub(crate) const MAX_REF_RESULTS: usize = 6000;

pub(crate) fn is_ref(v: &Value) -> bool {
    !matches!(
        v,
        Value::Nil
            | Value::Boolean(_)
            | Value::Number(_)
            | Value::Integer(_)
            | Value::LightUserData(_)
    )
}
