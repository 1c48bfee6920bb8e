-- init.lua of the Neovim under test (started by test/driver.lua): the
-- plugin from the repository, the real dfill server, and helpers the
-- driver calls over RPC (the global T).
local plugin = assert(os.getenv("DFILL_PLUGIN"), "DFILL_PLUGIN")
local dfill = assert(os.getenv("DFILL"), "DFILL")
local dir = assert(os.getenv("DFILL_TEST_DIR"), "DFILL_TEST_DIR")

vim.opt.runtimepath:prepend(plugin)
-- The client's side of the LSP traffic, in $XDG_CACHE_HOME/nvim/lsp.log
-- (the driver points XDG_CACHE_HOME into the artifacts).
if vim.lsp.log and vim.lsp.log.set_level then
  vim.lsp.log.set_level("debug")
else
  vim.lsp.set_log_level("debug")
end
vim.cmd("filetype plugin indent on")
vim.cmd("syntax on")
vim.o.swapfile = false
vim.o.shadafile = "NONE"
vim.o.more = false
vim.o.laststatus = 2
vim.o.cmdheight = 2
vim.o.number = true
vim.o.termguicolors = false

local mode = os.getenv("DFILL_GHOST")
local cmd = { dfill, "serve", "--log-file", dir .. "/server.log", "--log-level", "debug" }
-- Every suggestion is shown, whatever its score: the scenarios test the
-- client, not the embedded model's threshold (minScore).
local settings = { minScore = 0 }
if os.getenv("DFILL_SETUP") == "lsp-enable" then
  -- Neovim 0.11+ without setup(): lsp/dfill.lua from the runtimepath.
  vim.lsp.config("dfill", { cmd = cmd, settings = { dfill = settings } })
  vim.lsp.enable("dfill")
else
  require("dfill").setup({ cmd = cmd, settings = settings, ghost_text = (mode and mode ~= "") and mode or "auto" })
end

local api = vim.api
local ghost = require("dfill.ghost")
local util = require("dfill.util")

T = {}

-- The suggestion extmarks in the current buffer, the plugin's and Neovim's
-- own (0.12+): {ns, row, col, text = the virt_text chunks joined, lines =
-- the virt_lines, each joined}.
function T.marks()
  local buf = api.nvim_get_current_buf()
  local out = {}
  for name, ns in pairs(api.nvim_get_namespaces()) do
    if name == "dfill" or name == "nvim.lsp.inline_completion" then
      for _, m in ipairs(api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })) do
        local d = m[4] or {}
        local text = {}
        for _, chunk in ipairs(d.virt_text or {}) do
          text[#text + 1] = chunk[1]
        end
        local lines = {}
        for _, vl in ipairs(d.virt_lines or {}) do
          local l = {}
          for _, chunk in ipairs(vl) do
            l[#l + 1] = chunk[1]
          end
          lines[#lines + 1] = table.concat(l)
        end
        out[#out + 1] = { ns = name, row = m[2], col = m[3], text = table.concat(text), lines = lines }
      end
    end
  end
  return out
end

function T.state()
  local buf = api.nvim_get_current_buf()
  local cur = api.nvim_win_get_cursor(0)
  return {
    mode = api.nvim_get_mode().mode,
    cursor = cur,
    line = api.nvim_get_current_line(),
    lines = api.nvim_buf_get_lines(buf, 0, -1, false),
    marks = T.marks(),
    ghost = ghost.current(buf) or vim.NIL,
    answer = ghost.last_answer or vim.NIL,
    status = ghost.status,
    kind = require("dfill").mode(buf) or vim.NIL,
  }
end

-- Ready: the server runs and its model is loaded.
function T.ready()
  local st = require("dfill").status(500)
  local c = st.clients[1]
  return c ~= nil and c.stats ~= nil and type(c.stats.model) == "string" and c.stats.model ~= ""
end

function T.server_pid()
  local c = require("dfill").status(500).clients[1]
  return c and c.pid or vim.NIL
end

-- What the server answers for the cursor's position now (kind 1 invoked,
-- 2 automatic): the raw items.
function T.ask(kind)
  local buf = api.nvim_get_current_buf()
  local c = util.clients("dfill", buf)[1]
  local row, col = unpack(api.nvim_win_get_cursor(0))
  local line = api.nvim_get_current_line()
  local res = util.request_sync(c, "textDocument/inlineCompletion", {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    position = { line = row - 1, character = util.char_from_byte(line, col, c.offset_encoding) },
    context = { triggerKind = kind or 2 },
  }, 3000, buf)
  return res and res.result and (res.result.items or res.result) or vim.NIL
end

-- A stale answer: a request goes out, the buffer changes before the answer
-- arrives (autocommands off, so that only the changedtick check can catch
-- it). Returns the status counters before.
function T.stale_begin()
  local buf = api.nvim_get_current_buf()
  local before = vim.deepcopy(ghost.status)
  vim.o.eventignore = "all"
  ghost.request(buf, ghost.INVOKED)
  local row, col = unpack(api.nvim_win_get_cursor(0))
  api.nvim_buf_set_text(buf, row - 1, col, row - 1, col, { "x" })
  api.nvim_win_set_cursor(0, { row, col })
  return before
end

function T.stale_end()
  local buf = api.nvim_get_current_buf()
  local row, col = unpack(api.nvim_win_get_cursor(0))
  api.nvim_buf_set_text(buf, row - 1, col, row - 1, col + 1, {})
  vim.o.eventignore = ""
end

-- The request's position for a line with multibyte text before the
-- cursor: the params util.request is called with, captured.
function T.position_for(text)
  local buf = api.nvim_get_current_buf()
  local row = api.nvim_win_get_cursor(0)[1]
  local saved_line = api.nvim_get_current_line()
  api.nvim_buf_set_lines(buf, row - 1, row, false, { text })
  api.nvim_win_set_cursor(0, { row, #text })
  local real = util.request
  local captured
  util.request = function(client, method, params, handler, bufnr)
    captured = vim.deepcopy(params)
    return real(client, method, params, handler, bufnr)
  end
  ghost.request(buf, ghost.AUTOMATIC)
  util.request = real
  ghost.cancel(buf)
  api.nvim_buf_set_lines(buf, row - 1, row, false, { saved_line })
  local c = util.clients("dfill", buf)[1]
  return {
    position = captured and captured.position or vim.NIL,
    encoding = c.offset_encoding,
    -- The conversions themselves, for each encoding.
    char = {
      ["utf-8"] = util.char_from_byte(text, #text, "utf-8"),
      ["utf-16"] = util.char_from_byte(text, #text, "utf-16"),
      ["utf-32"] = util.char_from_byte(text, #text, "utf-32"),
    },
    byte = {
      ["utf-8"] = util.byte_from_char(text, #text, "utf-8"),
      ["utf-16"] = util.byte_from_char(text, 5, "utf-16"),
      ["utf-32"] = util.byte_from_char(text, 4, "utf-32"),
    },
  }
end

-- util.insert with a two-line text into a scratch file, written: the file's
-- path and where the insertion ended.
function T.insert_two_lines(path)
  vim.cmd("edit " .. vim.fn.fnameescape(path))
  local buf = api.nvim_get_current_buf()
  local row, col = util.insert(buf, 0, 3, 3, "first\nsecond")
  vim.cmd("write")
  vim.cmd("buffer #")
  return { row, col }
end

function T.exec(cmd)
  if api.nvim_exec2 then
    return api.nvim_exec2(cmd, { output = true }).output
  end
  return api.nvim_exec(cmd, true)
end

-- The screen (a TUI only) with the suggestion's cells between ⟨ and ⟩:
-- the text cells drawn with the same highlight as the first visible cell of
-- the suggestion's extmark.
function T.screen_marked()
  local ghost_attr
  local info = vim.fn.getwininfo(api.nvim_get_current_win())[1]
  local text_col = info.wincol + info.textoff -- first column of text
  local m = T.marks()[1]
  if m then
    local line = api.nvim_buf_get_lines(0, m.row, m.row + 1, false)[1] or ""
    local vcol = vim.fn.strdisplaywidth(line:sub(1, m.col))
    local lead = #m.text:match("^%s*")
    ghost_attr = vim.fn.screenattr(info.winrow + m.row - info.topline + 1, text_col + vcol + lead)
  end
  local out = {}
  for r = 1, vim.o.lines do
    local cells, inside = {}, false
    for c = 1, vim.o.columns do
      local ghost = ghost_attr ~= nil and c >= text_col and vim.fn.screenattr(r, c) == ghost_attr
      if ghost ~= inside then
        cells[#cells + 1] = ghost and "⟨" or "⟩"
        inside = ghost
      end
      cells[#cells + 1] = vim.fn.screenstring(r, c)
    end
    if inside then
      cells[#cells + 1] = "⟩"
    end
    out[#out + 1] = (table.concat(cells):gsub("%s+$", ""))
  end
  return table.concat(out, "\n")
end

-- :checkhealth dfill, as text.
function T.health()
  vim.cmd("checkhealth dfill")
  local lines = api.nvim_buf_get_lines(0, 0, -1, false)
  vim.cmd("bwipeout!")
  return table.concat(lines, "\n")
end
