//! The libraries Redis bundles into its Lua state, written for redcloak (no code taken from
//! Redis or from the original C libraries): `bit`, `cjson`, `cmsgpack`, `struct`.

use mlua::{Lua, Table};

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
