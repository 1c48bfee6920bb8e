-- dfill for Neovim: inline code completions from the dfill language server.
--
--   require("dfill").setup({ cmd = "/path/to/dfill", settings = { steps = 8 } })
--
-- On Neovim 0.12+ the suggestions are Neovim's own (vim.lsp.inline_completion);
-- before that (down to 0.7.2) this plugin draws them (lua/dfill/ghost.lua).
local api = vim.api
local util = require("dfill.util")
local config = require("dfill.config")
local client = require("dfill.client")
local ghost = require("dfill.ghost")

local M = {}

local augroup = "dfill"

-- Buffers dfill is attached to, and whether that buffer uses Neovim's own
-- inline completion.
local attached = {}

local set_keymaps -- defined below

--- Configures the plugin and attaches dfill to buffers of the configured
--- filetypes (those already open and those opened later). Calling it again
--- applies new options; new settings go to a running server at once.
function M.setup(opts)
  local was_running = #util.clients(client.name) > 0
  local old_settings = vim.deepcopy(config.settings())
  config.set(opts)
  ghost.define_highlights()

  for buf in pairs(attached) do
    if api.nvim_buf_is_valid(buf) then
      set_keymaps(buf)
    end
  end

  local group = api.nvim_create_augroup(augroup, { clear = true })
  api.nvim_create_autocmd("ColorScheme", { group = group, callback = ghost.define_highlights })
  if not config.get().enabled then
    return
  end
  api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = config.get().filetypes,
    callback = function(ev)
      M.start(ev.buf)
    end,
  })
  for _, buf in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(buf) then
      M.start(buf)
    end
  end
  if was_running and not vim.deep_equal(old_settings, config.settings()) then
    client.push_settings()
  end
end

--- Attaches dfill to buf (when its filetype is one of the configured ones),
--- starting the server if needed. Returns the client id.
function M.start(buf)
  buf = (buf == nil or buf == 0) and api.nvim_get_current_buf() or buf
  if not client.wanted(buf) then
    return nil
  end
  return client.start(buf)
end

-- Insert-mode keys. Each falls back to the key's own meaning when there is
-- nothing to act on (<C-]> still ends an abbreviation).
local mapped = {} -- buffer -> the lhs mapped there

function set_keymaps(buf)
  for _, lhs in ipairs(mapped[buf] or {}) do
    pcall(vim.keymap.del, "i", lhs, { buffer = buf })
  end
  mapped[buf] = {}
  local keys = config.get().keymaps
  if not keys then
    return
  end
  local function map(action, fallback_when_idle)
    local lhs = keys[action]
    if not lhs or lhs == "" then
      return
    end
    vim.keymap.set("i", lhs, function()
      return M._key(buf, action, lhs, fallback_when_idle)
    end, { buffer = buf, expr = true, silent = true, desc = "dfill: " .. action:gsub("_", " ") })
    table.insert(mapped[buf], lhs)
  end
  map("accept", true)
  map("accept_word", true)
  map("accept_line", true)
  map("dismiss", true)
  map("next", false)
  map("prev", false)
  map("trigger", false)
end

-- Partial accept of a Neovim-drawn (0.12+) item: the next word or line of
-- its text, inserted at the cursor.
local function builtin_partial(buf, item, how)
  local text = item.insert_text
  if type(text) ~= "string" then
    return
  end
  local win = api.nvim_get_current_win()
  local row, col = unpack(api.nvim_win_get_cursor(win))
  row = row - 1
  local start = item.range and item.range.start
  if start and start.row == row and start.col and start.col <= col then
    -- What was typed since the request is the start of the text.
    local typed = api.nvim_buf_get_lines(buf, row, row + 1, false)[1]:sub(start.col + 1, col)
    if text:sub(1, #typed) == typed then
      text = text:sub(#typed + 1)
    end
  end
  local part = how == "word" and util.next_word(text) or util.next_line(text)
  local erow, ecol = util.insert(buf, row, col, col, part)
  api.nvim_win_set_cursor(win, { erow + 1, ecol })
end

--- The expression behind each key (kept public for mappings of your own:
--- require("dfill")._key(0, "accept", "<Tab>", true)).
function M._key(buf, action, lhs, fallback_when_idle)
  buf = (buf == nil or buf == 0) and api.nvim_get_current_buf() or buf
  local cmd = ("<Cmd>lua require('dfill').%s()<CR>"):format(action)
  if ghost.visible(buf) then
    return cmd
  end
  if attached[buf] == "builtin" then
    local ic = vim.lsp.inline_completion
    if action == "accept" then
      if ic.get() then
        return ""
      end
    elseif action == "accept_word" or action == "accept_line" then
      local how = action == "accept_word" and "word" or "line"
      if ic.get({ on_accept = function(item) builtin_partial(buf, item, how) end }) then
        return ""
      end
    elseif action == "dismiss" then
      if ic.get({ on_accept = function() end }) then
        return ""
      end
    else
      return cmd
    end
  elseif not fallback_when_idle then
    return cmd
  end
  return lhs
end

local function current_buf()
  return api.nvim_get_current_buf()
end

--- Inserts the whole suggestion.
function M.accept()
  return ghost.accept(current_buf(), "all")
end

--- Inserts the suggestion's next word.
function M.accept_word()
  return ghost.accept(current_buf(), "word")
end

--- Inserts the suggestion's next line.
function M.accept_line()
  return ghost.accept(current_buf(), "line")
end

--- Hides the suggestion.
function M.dismiss()
  return ghost.dismiss(current_buf())
end

--- Shows the next candidate (asking for several when there is one).
function M.next()
  local buf = current_buf()
  if attached[buf] == "builtin" and not ghost.visible(buf) then
    return vim.lsp.inline_completion.select({ bufnr = buf, count = 1 })
  end
  return ghost.cycle(buf, 1)
end

--- Shows the previous candidate.
function M.prev()
  local buf = current_buf()
  if attached[buf] == "builtin" and not ghost.visible(buf) then
    return vim.lsp.inline_completion.select({ bufnr = buf, count = -1 })
  end
  return ghost.cycle(buf, -1)
end

--- Asks for suggestions now (an invoked request: up to 3 candidates).
function M.trigger()
  local buf = current_buf()
  if not ghost.enabled then
    return false
  end
  if attached[buf] == "builtin" then
    -- Neovim's inline completion has no invoked request of its own: hide
    -- its item and show the candidates with the plugin's ghost text. Its
    -- hiding is scheduled and cancels the requests in flight, so ask after.
    vim.lsp.inline_completion.get({ bufnr = buf, on_accept = function() end })
    ghost.attach(buf, { auto = false })
    vim.schedule(function()
      ghost.request(buf, ghost.INVOKED)
    end)
    return true
  end
  return ghost.request(buf, ghost.INVOKED)
end

--- Sets dfill up in a buffer it attached to: keys, and the inline
--- completion (Neovim's own on 0.12+, the plugin's before). Called from
--- the client's on_attach, also when the client was started by
--- vim.lsp.enable("dfill") with lsp/dfill.lua.
function M.attach(c, buf)
  if attached[buf] == nil then
    if config.builtin() then
      attached[buf] = "builtin"
      if ghost.enabled then
        vim.lsp.inline_completion.enable(true, { bufnr = buf })
      end
    else
      attached[buf] = "plugin"
      ghost.attach(buf)
    end
    set_keymaps(buf)
    api.nvim_create_autocmd("BufUnload", {
      buffer = buf,
      once = true,
      callback = function()
        attached[buf] = nil
        mapped[buf] = nil
      end,
    })
  end
  local on_attach = config.get().on_attach
  if on_attach then
    on_attach(c, buf)
  end
end

--- Which inline completion buf uses: "builtin", "plugin" or nil.
function M.mode(buf)
  return attached[(buf == nil or buf == 0) and api.nvim_get_current_buf() or buf]
end

local function set_enabled(on)
  ghost.enabled = on
  if not on then
    ghost.clear_all()
  end
  for buf, mode in pairs(attached) do
    if mode == "builtin" and api.nvim_buf_is_valid(buf) then
      vim.lsp.inline_completion.enable(on, { bufnr = buf })
    end
  end
end

--- Turns suggestions on.
function M.enable()
  set_enabled(true)
end

--- Turns suggestions off (the server keeps running).
function M.disable()
  set_enabled(false)
end

function M.toggle()
  set_enabled(not ghost.enabled)
end

function M.is_enabled()
  return ghost.enabled
end

--- Restarts the server and attaches the buffers again.
function M.restart()
  local bufs = {}
  for _, c in ipairs(util.clients(client.name)) do
    for buf in pairs(c.attached_buffers or {}) do
      bufs[#bufs + 1] = buf
    end
  end
  ghost.clear_all()
  client.stop(3000)
  for _, buf in ipairs(bufs) do
    if api.nvim_buf_is_valid(buf) then
      client.start(buf)
    end
  end
end

-- The server's process id: Neovim 0.7 keeps it, later releases do not
-- expose it, so look among Neovim's child processes.
local function server_pid(c)
  if c.rpc and c.rpc.pid then
    return c.rpc.pid
  end
  local name = vim.fn.fnamemodify(c.config.cmd and c.config.cmd[1] or "dfill", ":t")
  for _, pid in ipairs(api.nvim_get_proc_children(vim.fn.getpid())) do
    local proc = api.nvim_get_proc(pid)
    if proc and proc.name == name then
      return pid
    end
  end
  return nil
end

--- The state of dfill: {running, enabled, clients = {{id, pid, cmd, root,
--- encoding, buffers, stats, stats_error}}, client = ghost's counters,
--- last_message}. stats is the server's dfill/stats answer.
function M.status(timeout_ms)
  local out = {
    enabled = ghost.enabled,
    clients = {},
    client = vim.deepcopy(ghost.status),
    last_message = client.last_message,
    mode = M.mode(0),
  }
  for _, c in ipairs(util.clients(client.name)) do
    local info = {
      id = c.id,
      pid = server_pid(c),
      cmd = c.config.cmd,
      root = c.config.root_dir,
      encoding = c.offset_encoding,
      buffers = vim.tbl_keys(c.attached_buffers or {}),
    }
    local res, err = util.request_sync(c, "dfill/stats", vim.NIL, timeout_ms or 2000, nil)
    if res and res.result then
      info.stats = res.result
    else
      info.stats_error = err or (res and res.err and res.err.message) or "no answer"
    end
    out.clients[#out.clients + 1] = info
  end
  out.running = #out.clients > 0
  return out
end

--- The status as lines of text (:DfillStatus).
function M.status_lines()
  local st = M.status()
  local lines = {}
  local function add(fmt, ...)
    lines[#lines + 1] = fmt:format(...)
  end
  add("dfill: suggestions %s; %s ghost text in this buffer", st.enabled and "on" or "off", st.mode or "no")
  if not st.running then
    add("server: not running (cmd: %s)", table.concat(config.get().cmd, " "))
  end
  for _, c in ipairs(st.clients) do
    add("server: running, client %d, pid %s, %s", c.id, tostring(c.pid), table.concat(c.cmd or {}, " "))
    add("  root %s, position encoding %s, %d buffer(s)", tostring(c.root), tostring(c.encoding), #c.buffers)
    local s = c.stats
    if s then
      add("  model: %s%s", s.model ~= "" and tostring(s.model) or "(none)", (s.modelError and s.modelError ~= "") and (" — error: " .. s.modelError) or "")
      add("  completions: %d (%d cancelled, %d cache hits); own time p50 %.0f ms, p95 %.0f ms, max %.0f ms", s.count or 0, s.cancelled or 0, s.cacheHits or 0, s.ownP50Ms or 0, s.ownP95Ms or 0, s.ownMaxMs or 0)
    else
      add("  dfill/stats: %s", tostring(c.stats_error))
    end
  end
  local cs = st.client
  add("client: %d requests, %d answers, %d stale, %d shown%s; last latency %s", cs.requests, cs.answers, cs.stale, cs.shown,
    st.mode == "builtin" and " (the plugin's; not Neovim's own)" or "",
    cs.last_latency_ms and ("%.0f ms"):format(cs.last_latency_ms) or "-")
  local errs = {}
  if cs.last_error then
    errs[#errs + 1] = cs.last_error
  end
  if st.last_message then
    errs[#errs + 1] = st.last_message
  end
  add("last error: %s", #errs > 0 and table.concat(errs, "; ") or "none")
  return lines
end

return M
