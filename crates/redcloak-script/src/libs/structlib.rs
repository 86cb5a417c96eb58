//! placeholder
use mlua::{Lua, Table};
pub(crate) fn create(lua: &Lua) -> mlua::Result<Table> {
    lua.create_table()
}
