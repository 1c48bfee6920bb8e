-- The end-to-end test's driver, run by test.sh in `nvim --headless`.
--
-- It starts the Neovim under test with the plugin from the repository and
-- the real `dfill serve` (test/inner_init.lua), twice: once as a TUI inside
-- a terminal of this headless Neovim (so the screen can be read and saved),
-- once headless. It types into it over RPC (nvim_input, as keys typed),
-- waits (always bounded) for what the user would see, and checks the file
-- written to disk. Exits with :cquit on any failure.
local uv = vim.uv or vim.loop

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    return default
  end
  return v
end

local PLUGIN = assert(env("DFILL_PLUGIN"), "DFILL_PLUGIN")
local DFILL = assert(env("DFILL"), "DFILL")
local ART = assert(env("DFILL_ARTIFACTS"), "DFILL_ARTIFACTS")
local SAMPLE = assert(env("DFILL_SAMPLE"), "DFILL_SAMPLE")
local NVIM_BIN = env("NVIM_BIN", "nvim")
local UIS = vim.split(env("DFILL_UIS", "tui,headless"), ",", { plain = true })
local PIDS = ART .. "/pids"

local log_file = assert(io.open(ART .. "/driver.log", "w"))
local function log(fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or fmt
  log_file:write(msg, "\n")
  log_file:flush()
  io.stdout:write(msg, "\n")
  io.stdout:flush()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function note_pid(pid)
  if type(pid) == "number" and pid > 0 then
    local f = io.open(PIDS, "a")
    if f then
      f:write(pid, "\n")
      f:close()
    end
  end
end

local function fail(msg, ...)
  error(select("#", ...) > 0 and msg:format(...) or msg, 0)
end

local function check(cond, msg, ...)
  if not cond then
    fail(msg, ...)
  end
end

local function eq(want, got, what)
  if not vim.deep_equal(want, got) then
    fail("%s: want %s, got %s", what, vim.inspect(want), vim.inspect(got))
  end
end

-- One Neovim under test.
local Inner = {}
Inner.__index = Inner

function Inner.start(ui, setup, dir, file)
  local self = setmetatable({ ui = ui, dir = dir, screens = 0 }, Inner)
  local sock = ("/tmp/dfill-nvim-%d-%s.sock"):format(uv.os_getpid(), ui)
  os.remove(sock)
  local env_vars = {
    DFILL_PLUGIN = PLUGIN,
    DFILL = DFILL,
    DFILL_TEST_DIR = dir,
    DFILL_GHOST = env("DFILL_GHOST", ""),
    DFILL_SETUP = setup,
    XDG_CACHE_HOME = dir .. "/cache",
    XDG_STATE_HOME = dir .. "/state",
    NVIM_LISTEN_ADDRESS = "",
  }
  local argv = { NVIM_BIN, "-u", PLUGIN .. "/test/inner_init.lua", "-i", "NONE", "-n", "--listen", sock, file }
  local opts = {
    env = env_vars,
    on_exit = function(_, code)
      self.exit_code = code
    end,
  }
  if ui == "tui" then
    vim.o.columns = 100
    vim.o.lines = 30
    vim.cmd("enew")
    self.term = vim.api.nvim_get_current_buf()
    self.job = vim.fn.termopen(argv, opts)
  else
    table.insert(argv, 2, "--headless")
    self.job = vim.fn.jobstart(argv, opts)
  end
  check(self.job > 0, "could not start %s", NVIM_BIN)
  note_pid(vim.fn.jobpid(self.job))
  -- The socket file can exist a moment before it accepts connections.
  check(vim.wait(15000, function()
    if self.exit_code ~= nil then
      return true
    end
    if uv.fs_stat(sock) == nil then
      return false
    end
    local ok, chan = pcall(vim.fn.sockconnect, "pipe", sock, { rpc = true })
    if ok and chan > 0 then
      self.chan = chan
    end
    return self.chan ~= nil
  end, 20) and self.exit_code == nil, "Neovim under test did not open %s", sock)
  self.sock = sock
  return self
end

function Inner:lua(code, ...)
  return vim.fn.rpcrequest(self.chan, "nvim_exec_lua", code, { ... })
end

function Inner:state()
  return self:lua("return T.state()")
end

-- Types keys as a user would (they go through mappings).
function Inner:input(keys)
  vim.fn.rpcrequest(self.chan, "nvim_input", keys)
end

function Inner:wait(what, ms, fn)
  local last
  local ok = vim.wait(ms, function()
    last = self:state()
    return fn(last)
  end, 20)
  if not ok then
    fail("timed out after %d ms waiting for %s; state: %s", ms, what, vim.inspect({
      mode = last.mode, cursor = last.cursor, line = last.line, marks = last.marks, ghost = last.ghost, status = last.status,
    }))
  end
  return last
end

-- The screen of the TUI (nil for the headless one), saved under name.
function Inner:screen(name, want)
  if not self.term then
    return nil
  end
  local lines
  local ok = vim.wait(3000, function()
    lines = vim.api.nvim_buf_get_lines(self.term, 0, -1, false)
    if not want then
      return true
    end
    for _, l in ipairs(lines) do
      if l:find(want, 1, true) then
        return true
      end
    end
    return false
  end, 30)
  self.screens = self.screens + 1
  local path = ("%s/screen-%d-%s.txt"):format(self.dir, self.screens, name)
  write(path, table.concat(lines, "\n") .. "\n")
  log("    screen: %s", path)
  local marked = self:lua("return T.screen_marked()")
  write((path:gsub("%.txt$", ".marked.txt")), marked .. "\n")
  check(ok, "screen %s never showed %q", path, want or "")
  return lines
end

function Inner:quit()
  if self.chan then
    pcall(vim.fn.rpcnotify, self.chan, "nvim_command", "qa!")
  end
  local exited = vim.wait(10000, function()
    return self.exit_code ~= nil
  end, 20)
  if not exited then
    vim.fn.jobstop(self.job)
  end
  os.remove(self.sock)
  return exited
end

-- The visible suggestion: the mark's first line (virt_text) and its other
-- lines (virt_lines).
local function shown(st)
  local m = st.marks[1]
  return m and m.text, m and m.lines
end

-- ui: "tui" or "headless"; setup: "setup" (require("dfill").setup, every
-- step) or "lsp-enable" (vim.lsp.enable("dfill") with lsp/dfill.lua, the
-- main path only).
-- A suggestion is shown (not only the denoising steps drawn while waiting).
local function has_suggestion(st)
  if st.ghost ~= vim.NIL then
    return true
  end
  for _, m in ipairs(st.marks) do
    if m.ns == "nvim.lsp.inline_completion" then
      return true
    end
  end
  return false
end

local function scenario(ui, setup)
  local full = setup == "setup"
  local dir = ART .. "/" .. (full and ui or setup)
  vim.fn.mkdir(dir, "p")
  local file = dir .. "/sample.go"
  local original = read(SAMPLE)
  write(file, original)
  local lines = vim.split(original, "\n", { plain = true })
  check(lines[7] == "\tif err != nil {" and lines[8] == "", "unexpected sample file %s", SAMPLE)

  local inner = Inner.start(ui, setup, dir, file)
  local ok, err = pcall(function()
    local function step(name)
      log("  %s: %s", ui, name)
    end

    step("server starts and loads its model")
    check(vim.wait(20000, function()
      return inner:lua("return _G.T ~= nil and T.ready()")
    end, 50), "dfill did not start or load its model (see %s/server.log)", dir)
    local server_pid = inner:lua("return T.server_pid()")
    check(type(server_pid) == "number", "no process id for the server: %s", vim.inspect(server_pid))
    note_pid(server_pid)
    local kind = inner:state().kind
    log("    suggestions drawn by: %s", tostring(kind))

    step("typing on the blank line inside `if err != nil {` shows `return err`")
    inner:input("8GA<Tab><Tab>")
    local st = inner:wait("a suggestion", 10000, function(s)
      return #s.marks > 0 and s.line == "\t\t"
    end)
    eq({ 8, 2 }, st.cursor, "cursor")
    eq(7, st.marks[1].row, "suggestion row")
    eq(2, st.marks[1].col, "suggestion column")
    eq("return err", (shown(st)), "suggestion text")
    -- What the server says for this very position.
    local items = inner:lua("return T.ask(2)")
    check(type(items) == "table" and items[1], "the server answered nothing: %s", vim.inspect(items))
    eq("return err", items[1].insertText, "server's insertText")
    eq({ line = 7, character = 2 }, items[1].range.start, "server's range start")
    if kind == "plugin" then
      eq(items[1].insertText, st.answer.items[1].insertText, "the answer the plugin drew")
      eq("return err", st.ghost.text, "plugin's suggestion")
    end
    inner:screen("suggestion", "                return err")

    step("<M-l> accepts it; the cursor ends after it")
    inner:input("<M-l>")
    st = inner:wait("the accepted text", 3000, function(s)
      return s.line == "\t\treturn err"
    end)
    eq({ 8, 12 }, st.cursor, "cursor after accept")
    check(st.mode:sub(1, 1) == "i", "still in insert mode (mode %s)", st.mode)
    inner:screen("accepted", "return err")

    step(":w writes `return err` on line 8, no NUL, the rest unchanged")
    inner:input("<Esc>")
    inner:wait("normal mode", 2000, function(s)
      return s.mode == "n"
    end)
    inner:lua("vim.cmd('write')")
    local want_lines = vim.deepcopy(lines)
    want_lines[8] = "\t\treturn err"
    local written = read(file)
    check(not written:find("\0", 1, true), "NUL byte in %s", file)
    eq(table.concat(want_lines, "\n"), written, "file after :w")

    if full then
    step("<C-]> dismisses a suggestion, and it stays dismissed")
    inner:input("8G0DA<Tab><Tab>")
    inner:wait("a suggestion", 10000, function(s)
      return #s.marks > 0 and s.line == "\t\t"
    end)
    inner:input("<C-]>")
    st = inner:wait("no suggestion", 2000, function(s)
      return #s.marks == 0
    end)
    eq("\t\t", st.line, "line after dismiss")
    vim.wait(500)
    st = inner:state()
    eq(0, #st.marks, "suggestions after dismiss and a pause")
    eq("\t\t", st.line, "line after dismiss and a pause")
    inner:screen("dismissed")

    step("leaving insert mode or moving away clears the suggestion")
    inner:input("x<BS>")
    inner:wait("a suggestion", 10000, function(s)
      return #s.marks > 0 and s.line == "\t\t"
    end)
    inner:input("<Esc>")
    inner:wait("no suggestion in normal mode", 2000, function(s)
      return s.mode == "n" and #s.marks == 0
    end)
    inner:input("A")
    inner:wait("a suggestion on entering insert mode", 10000, function(s)
      return s.mode:sub(1, 1) == "i" and #s.marks > 0 and s.marks[1].row == 7
    end)
    inner:input("<Up>")
    inner:wait("no suggestion left on line 8", 3000, function(s)
      return s.cursor[1] == 7 and #vim.tbl_filter(function(m)
        return m.row == 7
      end, s.marks) == 0
    end)
    inner:input("<Down>")

    step("<M-w> accepts a word, <M-j> the line")
    inner:input("x<BS>")
    inner:wait("a suggestion", 10000, function(s)
      return #s.marks > 0 and s.line == "\t\t"
    end)
    inner:input("<M-w>")
    st = inner:wait("the first word", 3000, function(s)
      return s.line == "\t\treturn" and shown(s) == " err"
    end)
    eq({ 8, 8 }, st.cursor, "cursor after a word")
    inner:screen("word", "return err")
    inner:input("<M-j>")
    st = inner:wait("the rest of the line", 3000, function(s)
      return s.line == "\t\treturn err"
    end)
    eq({ 8, 12 }, st.cursor, "cursor after the line")

    step("<M-\\> asks (invoked); <M-]> cycles or asks for more")
    inner:input("<Esc>8G0DA")
    st = inner:wait("an automatic suggestion on the empty line", 10000, function(s)
      return s.line == "" and s.mode:sub(1, 1) == "i" and #s.marks > 0
    end)
    local before = st.status.requests
    inner:input("<M-\\>")
    st = inner:wait("an invoked suggestion", 10000, function(s)
      return s.status.requests > before and s.answer ~= vim.NIL and s.answer.kind == 1 and s.ghost ~= vim.NIL
    end)
    eq(1, #st.marks, "suggestions drawn")
    eq("dfill", st.marks[1].ns, "who draws an invoked suggestion")
    eq("\t\treturn err", st.ghost.text, "invoked suggestion")
    eq(string.rep(" ", 16) .. "return err", shown(st):sub(1, 26), "invoked suggestion drawn, tabs as spaces")
    local count = st.ghost.count
    before = st.status.requests
    inner:input("<M-]>")
    if count > 1 then
      st = inner:wait("the second candidate", 3000, function(s)
        return s.ghost ~= vim.NIL and s.ghost.index == 2
      end)
    else
      st = inner:wait("an invoked request for more candidates", 3000, function(s)
        return s.status.requests > before and s.status.answers >= s.status.requests - 1 and #s.marks > 0
      end)
    end
    inner:screen("invoked", "return err")
    inner:input("<C-]>")
    inner:wait("no suggestion", 2000, function(s)
      return #s.marks == 0
    end)

    step("an answer for a buffer that changed since the request is dropped")
    before = inner:lua("return T.stale_begin()")
    st = inner:wait("the stale answer", 10000, function(s)
      return s.status.answers > before.answers
    end)
    inner:lua("T.stale_end()")
    eq(before.stale + 1, st.status.stale, "stale answers")
    eq(0, #st.marks, "suggestions from a stale answer")

    step("a two-line suggestion is drawn with virt_lines and accepted without NUL")
    inner:input("<Esc>8G0DA")
    inner:wait("an empty line in insert mode", 3000, function(s)
      return s.line == "" and s.mode:sub(1, 1) == "i"
    end)
    -- Wait for the automatic suggestion and dismiss it, so that no answer
    -- replaces the text shown here.
    inner:wait("an automatic suggestion", 10000, function(s)
      return #s.marks > 0
    end)
    inner:input("<C-]>")
    inner:wait("no suggestion", 2000, function(s)
      return #s.marks == 0
    end)
    inner:lua([[require("dfill.ghost").show_items(vim.api.nvim_get_current_buf(), { { text = "\t\tlog.Println(err)\n\t\treturn err", repl = 0 } })]])
    st = inner:state()
    eq(string.rep(" ", 16) .. "log.Println(err)", shown(st), "first line drawn")
    eq({ string.rep(" ", 16) .. "return err" }, select(2, shown(st)), "second line drawn")
    inner:screen("two-lines", "log.Println(err)")
    inner:input("<M-l>")
    st = inner:wait("two lines inserted", 3000, function(s)
      return s.lines[8] == "\t\tlog.Println(err)" and s.lines[9] == "\t\treturn err"
    end)
    eq({ 9, 12 }, st.cursor, "cursor after two lines")
    inner:input("<Esc>")
    inner:lua("vim.cmd('write')")
    written = read(file)
    check(not written:find("\0", 1, true), "NUL byte in %s after a two-line accept", file)
    want_lines = vim.deepcopy(lines)
    want_lines[8] = "\t\tlog.Println(err)"
    table.insert(want_lines, 9, "\t\treturn err")
    eq(table.concat(want_lines, "\n"), written, "file after a two-line accept")
    -- Back to the sample's shape for the steps below.
    inner:input("9Gdd")
    inner:wait("line 9 deleted", 2000, function(s)
      return s.lines[9] == "\t}"
    end)

    step("util.insert with a two-line text writes no NUL")
    local scratch = dir .. "/two-lines.txt"
    write(scratch, "abc\n")
    local pos = inner:lua("return T.insert_two_lines(...)", scratch)
    eq({ 1, 6 }, pos, "end of the insertion")
    eq("abcfirst\nsecond\n", read(scratch), "scratch file")

    step("a suggestion inside a line is drawn over the rest of it and replaces its range")
    -- Suggestions off, so that no answer replaces the ones shown here.
    inner:lua("vim.cmd('DfillDisable')")
    inner:input("<Esc>8GA")
    inner:wait("insert mode on line 8", 3000, function(s)
      return s.mode:sub(1, 1) == "i" and s.cursor[1] == 8
    end)
    for _, case in ipairs({ { text = "x)", repl = 1, cursor = 8 }, { text = "x", repl = 0, cursor = 7 } }) do
      inner:lua([[
        vim.api.nvim_buf_set_lines(0, 7, 8, false, { "\t\tfoo()" })
        vim.api.nvim_win_set_cursor(0, { 8, 6 })
        require("dfill.ghost").show_items(vim.api.nvim_get_current_buf(), { ... })
      ]], { text = case.text, repl = case.repl })
      st = inner:state()
      eq({ 7, 6, "x)" }, { st.marks[1].row, st.marks[1].col, st.marks[1].text }, "drawn over the line for " .. vim.inspect(case))
      inner:input("<M-l>")
      st = inner:wait("the line completed", 3000, function(s)
        return s.line == "\t\tfoo(x)"
      end)
      eq({ 8, case.cursor }, st.cursor, "cursor after " .. vim.inspect(case))
    end
    inner:lua("vim.cmd('DfillEnable')")
    inner:input("<Esc>")

    step("positions are sent in the negotiated encoding (UTF-16 unless UTF-8 is agreed)")
    inner:input("<Esc>8GA")
    inner:wait("insert mode on line 8", 3000, function(s)
      return s.mode:sub(1, 1) == "i" and s.cursor[1] == 8
    end)
    -- "\t\té😀": 8 bytes, 5 UTF-16 code units, 4 code points.
    local p = inner:lua("return T.position_for(...)", "\t\té😀")
    eq({ ["utf-8"] = 8, ["utf-16"] = 5, ["utf-32"] = 4 }, p.char, "byte column 8 as LSP characters")
    eq({ ["utf-8"] = 8, ["utf-16"] = 8, ["utf-32"] = 8 }, p.byte, "LSP characters as byte columns")
    eq({ line = 7, character = p.char[p.encoding] }, p.position, "position sent in " .. tostring(p.encoding))
    log("    position encoding: %s", p.encoding)

    step(":DfillDisable stops suggestions, :DfillEnable brings them back")
    inner:lua("vim.cmd('DfillDisable')")
    inner:input("<Esc>8G0DA<Tab><Tab>")
    vim.wait(600)
    st = inner:state()
    eq("\t\t", st.line, "line with suggestions off")
    eq(0, #st.marks, "suggestions while disabled")
    inner:lua("vim.cmd('DfillEnable')")
    inner:input("x<BS>")
    inner:wait("a suggestion again", 10000, function(s)
      return #s.marks > 0
    end)
    inner:input("<Esc>")

    step("show_denoise draws the denoising steps, then the answer")
    inner:lua([[require("dfill").setup(vim.tbl_extend("force", require("dfill.config").get(), { show_denoise = true }))]])
    inner:input("<Esc>8G0DA")
    inner:wait("an automatic suggestion on the empty line", 10000, function(s)
      return s.line == "" and s.mode:sub(1, 1) == "i" and has_suggestion(s)
    end)
    before = inner:state().status
    -- A line no earlier request saw, so that the server generates (a cached
    -- answer has no steps to show); then ask, as <M-\> does.
    inner:lua([[
      vim.api.nvim_buf_set_lines(0, 1, 2, false, { "// " .. vim.fn.reltimestr(vim.fn.reltime()) })
      require("dfill").trigger()
    ]])
    st = inner:wait("an invoked answer", 10000, function(s)
      return s.status.answers > before.answers and s.answer ~= vim.NIL and s.answer.kind == 1
    end)
    check(st.status.denoise_steps > before.denoise_steps, "no denoising step drawn (%d)", st.status.denoise_steps)
    if #st.answer.items > 0 then
      eq(st.answer.items[1].insertText, st.ghost ~= vim.NIL and st.ghost.text, "suggestion after denoising")
      eq(1, #st.marks, "drawings after the answer")
    else
      eq(0, #st.marks, "denoising steps left on screen")
    end
    inner:input("<C-]><Esc>")
    inner:lua([[require("dfill").setup(vim.tbl_extend("force", require("dfill.config").get(), { show_denoise = false }))]])
    inner:lua("vim.api.nvim_buf_set_lines(0, 1, 2, false, { '' })")

    step("keymaps = { accept = \"<Tab>\" }: Tab accepts, and inserts a tab without a suggestion")
    inner:lua([[require("dfill").setup(vim.tbl_deep_extend("force", require("dfill.config").get(), { keymaps = { accept = "<Tab>" } }))]])
    inner:input("<Esc>8G0DA")
    inner:wait("a suggestion on the empty line", 10000, function(s)
      return s.line == "" and s.mode:sub(1, 1) == "i" and has_suggestion(s)
    end)
    inner:input("<Tab>")
    st = inner:wait("the suggestion accepted with Tab", 3000, function(s)
      return s.line == "\t\treturn err"
    end)
    eq({ 8, 12 }, st.cursor, "cursor after Tab")
    inner:input("<Esc>8G0DA")
    inner:wait("insert mode on the empty line", 3000, function(s)
      return s.line == "" and s.mode:sub(1, 1) == "i"
    end)
    inner:lua("require('dfill').disable()")
    inner:wait("no suggestion", 3000, function(s)
      return #s.marks == 0
    end)
    inner:input("<Tab>")
    inner:wait("a tab typed", 3000, function(s)
      return s.line == "\t"
    end)
    inner:lua("require('dfill').enable()")
    inner:lua([[require("dfill").setup(vim.tbl_deep_extend("force", require("dfill.config").get(), { keymaps = { accept = "<M-l>" } }))]])
    inner:input("<Esc>")

    step(":DfillRestart starts a new server and suggestions come back")
    local old_pid = inner:lua("return T.server_pid()")
    inner:lua("vim.cmd('DfillRestart')")
    check(vim.wait(10000, function()
      local pid = inner:lua("return T.server_pid()")
      return type(pid) == "number" and pid ~= old_pid and inner:lua("return T.ready()")
    end, 50), "no new server after :DfillRestart")
    server_pid = inner:lua("return T.server_pid()")
    note_pid(server_pid)
    check(vim.wait(5000, function()
      return not uv.kill(old_pid, 0)
    end, 50), "the old server (pid %d) still runs after :DfillRestart", old_pid)
    inner:input("8G0DA<Tab><Tab>")
    inner:wait("a suggestion from the new server", 10000, function(s)
      return s.line == "\t\t" and has_suggestion(s)
    end)
    inner:input("<Esc>")

    step(":DfillStatus and :checkhealth dfill")
    local status = inner:lua("return T.exec('DfillStatus')")
    write(dir .. "/DfillStatus.txt", status .. "\n")
    log("    %s", (status:gsub("\n", "\n    ")))
    check(status:find("server: running", 1, true), "DfillStatus: no running server")
    check(status:find("model: dfill-go-4m", 1, true), "DfillStatus: no model name")
    check(status:find("last latency %d+ ms"), "DfillStatus: no latency")
    local health = inner:lua("return T.health()")
    write(dir .. "/checkhealth.txt", health .. "\n")
    check(health:find("dfill 0.2", 1, true), "checkhealth: no dfill version:\n%s", health)
    check(health:find("model dfill-go-4m", 1, true), "checkhealth: no model:\n%s", health)

    end

    step("no errors or deprecation warnings in :messages")
    local messages = inner:lua("return T.exec('messages')")
    write(dir .. "/messages.txt", messages .. "\n")
    for _, bad in ipairs({ "Error", "error", "deprecated", "E5108", "stack traceback" }) do
      check(not messages:find(bad, 1, true), "%q in :messages:\n%s", bad, messages)
    end

    step("quitting Neovim stops the server")
    local exited = inner:quit()
    check(exited, "Neovim under test did not exit")
    do
      local gone = vim.wait(5000, function()
        return not uv.kill(server_pid, 0)
      end, 50)
      check(gone, "dfill (pid %d) still runs after Neovim quit", server_pid)
    end
  end)
  if not ok then
    if inner.term then
      pcall(inner.screen, inner, "failure")
    end
    pcall(function()
      local st = inner:state()
      write(dir .. "/buffer-at-failure.txt", table.concat(st.lines, "\n") .. "\n")
      write(dir .. "/state-at-failure.txt", vim.inspect(st) .. "\n")
    end)
    inner:quit()
    error(err, 0)
  end
end

local function main()
  local v = vim.version()
  log("nvim test: Neovim %d.%d.%d (%s), dfill %s", v.major, v.minor, v.patch, NVIM_BIN, DFILL)
  local failed = 0
  local runs = {}
  for _, ui in ipairs(UIS) do
    runs[#runs + 1] = { ui, "setup" }
  end
  if vim.lsp.config then
    runs[#runs + 1] = { "headless", "lsp-enable" }
  else
    log("scenario lsp-enable: not applicable (vim.lsp.config is Neovim 0.11+)")
  end
  for _, run in ipairs(runs) do
    local name = run[2] == "setup" and run[1] or run[2]
    log("scenario %s", name)
    local ok, err = pcall(scenario, run[1], run[2])
    if ok then
      log("scenario %s: ok", name)
    else
      failed = failed + 1
      log("scenario %s: FAIL: %s", name, tostring(err))
    end
  end
  return failed
end

local ok, failed = pcall(main)
if not ok then
  log("driver error: %s", tostring(failed))
  failed = 1
end
log_file:close()
if failed == 0 then
  vim.cmd("qall!")
else
  vim.cmd("cquit 1")
end
