-- redcloak's sandbox prelude: runs once per Lua state, before any user code, as chunk
-- "=redcloak" (frames of this chunk are hidden from error positions, see error handling).
-- It makes the globals and the libraries read-only the way Redis 7.0 does: user code sees
-- proxies (empty tables whose metatable reads through to the real table and refuses writes).
local real_G, unwrap, check_killed = ...
local error, type, tostring, select = error, type, tostring, select
local base_rawget, base_rawset = rawget, rawset
local base_setmetatable, base_getmetatable = setmetatable, getmetatable
local base_pcall, base_xpcall = pcall, xpcall

local readonly_msg = "Attempt to modify a readonly table"
local real_of = base_setmetatable({}, { __mode = "k" })   -- proxy -> real table
local shown_mt = base_setmetatable({}, { __mode = "k" })  -- proxy -> what getmetatable shows

local function refuse() error(readonly_msg, 2) end

local function protect(real, shown)
  local proxy = {}
  base_setmetatable(proxy, { __index = real, __newindex = refuse, __metatable = false })
  real_of[proxy] = real
  shown_mt[proxy] = shown
  return proxy
end

local function undefined_global(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end
base_setmetatable(real_G, { __index = undefined_global })

-- Library tables become read-only proxies, and so does _G itself.
local libs = { "string", "table", "math", "coroutine", "redis", "bit", "cjson", "cmsgpack", "struct" }
local proxies = {}
for i = 1, #libs do
  local real = base_rawget(real_G, libs[i])
  if real ~= nil then
    proxies[libs[i]] = protect(real, nil)
    base_rawset(real_G, libs[i], proxies[libs[i]])
  end
end
local G = protect(real_G, protect({ __index = undefined_global }, nil))
base_rawset(real_G, "_G", G)

-- The string metatable: methods read through the string library; getmetatable("") shows a
-- read-only view whose __index is the `string` global, as in Redis.
local string_mt = base_getmetatable("")
if string_mt and proxies.string then
  string_mt.__metatable = protect({ __index = proxies.string }, nil)
end

-- rawget, rawset, next, pairs, setmetatable, getmetatable, table.insert, table.remove,
-- coroutine.resume, loadstring and load are replaced from Rust (sandbox.rs): as C functions
-- they raise argument errors at the caller's position even in a tail call.

-- Redis's pcall gives the `err` string of an error table instead of the table.
local function pcall_result(ok, ...)
  if ok then return true, ... end
  check_killed()
  local e = unwrap((...))
  if type(e) == "table" then
    local s = base_rawget(e, "err")
    if type(s) == "string" or type(s) == "number" then return false, s end
  end
  return false, e
end
function real_G.pcall(...)
  if select("#", ...) == 0 then return false, "attempt to call a boolean value" end
  return pcall_result(base_pcall(...))
end
local function xpcall_result(ok, ...)
  if not ok then check_killed() end
  return ok, ...
end
function real_G.xpcall(f, handler)
  return xpcall_result(base_xpcall(f, function(e) return handler(unwrap(e)) end))
end
return G, protect, real_of, shown_mt
