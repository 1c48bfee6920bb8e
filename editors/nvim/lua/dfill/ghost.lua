-- The plugin's own ghost text, for Neovim before 0.12 (or when asked for):
-- textDocument/inlineCompletion requested when typing pauses, the answer
-- drawn with extmarks (virt_text over the rest of the cursor's line,
-- virt_lines for the lines after it), accepted whole, by word or by line.
local api = vim.api
local util = require("dfill.util")
local config = require("dfill.config")

local M = {}

M.ns = api.nvim_create_namespace("dfill")

-- A request unanswered this long is taken as lost. Neovim never calls the
-- handler of a request the server answers with RequestCancelled (-32800),
-- and dfill answers so a request that a newer one for the same document
-- superseded, also when that newer one is not ours (Neovim's own inline
-- completion, another plugin).
local LOST_MS = 15000

-- LSP 3.18 InlineCompletionTriggerKind.
M.INVOKED = 1
M.AUTOMATIC = 2

-- What :DfillStatus reports from this side of the connection.
M.status = {
  requests = 0, -- inline completion requests sent
  answers = 0, -- answers received (not errors)
  stale = 0, -- answers dropped because the buffer or cursor had moved on
  shown = 0, -- suggestions drawn
  denoise_steps = 0, -- dfill/denoise steps drawn
  last_latency_ms = nil, -- request to answer, for the last answer
  last_error = nil, -- the last error message from the server
}

-- The last answer used: {row, col, kind, items} with the items as the
-- server sent them.
M.last_answer = nil

-- Whether suggestions are on (:DfillEnable, :DfillDisable).
M.enabled = true

-- Per buffer:
--   timer    the debounce timer
--   pending  the request in flight {client_id, id, tick, row, col, kind, t0}
--   anchor   where the current items apply {row, col, tail}
--   items    candidates {text, repl}: text to insert at anchor.col,
--            replacing repl bytes after it
--   index    the candidate shown
--   sugg     the suggestion shown {row, col, text, repl, tail}; tail is the
--            line's text after col, which typing ahead leaves unchanged
--   mark     the extmark id
--   last_key changedtick:row:col of the last event handled
--   attached its autocommands are set; auto: it asks while typing
--   sending  inside the call that sends our request (see LspRequest below)
local states = {}

local function state(buf)
  local s = states[buf]
  if not s then
    s = { buf = buf, items = {}, index = 1 }
    states[buf] = s
  end
  return s
end

function M.define_highlights()
  vim.cmd("highlight default link DfillSuggestion Comment")
  vim.cmd("highlight default link DfillSuggestionInfo Comment")
  vim.cmd("highlight default link DfillDenoise NonText")
end

local function line_at(buf, row)
  return api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
end

-- The cursor as a 0-based row and byte column, when buf is in the current
-- window.
local function cursor(buf)
  local win = api.nvim_get_current_win()
  if api.nvim_win_get_buf(win) ~= buf then
    return nil
  end
  local pos = api.nvim_win_get_cursor(win)
  return pos[1] - 1, pos[2]
end

local function in_insert()
  return api.nvim_get_mode().mode:sub(1, 1) == "i"
end

local function stop_timer(s)
  local t = s.timer
  s.timer = nil
  if t and not t:is_closing() then
    t:stop()
    t:close()
  end
end

--- Draws s.sugg (or removes the drawing when there is none).
-- place_mark draws s's extmark at row, col (replacing the one shown): the
-- virtual text over the rest of the line and the lines below it.
local function place_mark(s, buf, row, col, virt_text, virt_lines)
  local opts = {
    virt_text = virt_text,
    virt_text_pos = "overlay",
    hl_mode = "combine",
    priority = 200,
  }
  if #virt_lines > 0 then
    opts.virt_lines = virt_lines
  end
  if s.mark then
    pcall(api.nvim_buf_del_extmark, buf, M.ns, s.mark)
  end
  s.mark = api.nvim_buf_set_extmark(buf, M.ns, row, col, opts)
end

local function render(buf)
  local s = states[buf]
  if not s then
    return
  end
  local g = s.sugg
  if not g then
    if s.mark then
      pcall(api.nvim_buf_del_extmark, buf, M.ns, s.mark)
      s.mark = nil
    end
    return
  end
  local ts = vim.bo[buf].tabstop
  local line = line_at(buf, g.row)
  local vcol = vim.fn.strdisplaywidth(line:sub(1, g.col))
  local old_width = vim.fn.strdisplaywidth(line:sub(g.col + 1), vcol)
  local after = line:sub(g.col + g.repl + 1)
  local lines = util.lines(g.text)

  local first = util.expand_tabs(lines[1], vcol, ts)
  local virt_text = { { first, "DfillSuggestion" } }
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { util.expand_tabs(lines[i], 0, ts), "DfillSuggestion" } }
  end

  -- The row where the text after the replaced range ends up, as it will read.
  local last = #lines == 1 and virt_text or virt_lines[#virt_lines]
  local width = #lines == 1 and vcol + vim.fn.strdisplaywidth(first)
    or vim.fn.strdisplaywidth(last[1][1])
  if after ~= "" then
    local shown = util.expand_tabs(after, width, ts)
    table.insert(last, { shown, "Normal" })
    width = width + vim.fn.strdisplaywidth(shown)
  end
  if #s.items > 1 then
    local info = (" (%d/%d)"):format(s.index, #s.items)
    table.insert(last, { info, "DfillSuggestionInfo" })
    width = width + #info
  end

  -- The overlay must hide what it does not replace on the cursor's row.
  local row_width = #lines == 1 and width or vcol + vim.fn.strdisplaywidth(first)
  if row_width < vcol + old_width then
    table.insert(virt_text, { string.rep(" ", vcol + old_width - row_width), "Normal" })
  end

  place_mark(s, buf, g.row, g.col, virt_text, virt_lines)
end

local function show(buf, index)
  local s = states[buf]
  local it = s.items[index]
  s.index = index
  s.sugg = { row = s.anchor.row, col = s.anchor.col, text = it.text, repl = it.repl, tail = s.anchor.tail }
  M.status.shown = M.status.shown + 1
  render(buf)
end

--- Removes the suggestion from buf.
function M.clear(buf)
  local s = states[buf]
  if not s then
    return
  end
  s.sugg = nil
  s.items = {}
  s.index = 1
  render(buf)
end

--- Stops the debounce timer and cancels the request in flight.
function M.cancel(buf)
  local s = states[buf]
  if not s then
    return
  end
  stop_timer(s)
  local req = s.pending
  s.pending = nil
  if req and not s.sugg and api.nvim_buf_is_valid(buf) then
    render(buf) -- removes the denoising steps drawn meanwhile
  end
  if req and req.id then
    local client = vim.lsp.get_client_by_id(req.client_id)
    if client and not util.is_stopped(client) then
      pcall(util.cancel_request, client, req.id)
    end
  end
end

-- An InlineCompletionItem as a candidate relative to the cursor (row, col)
-- on line: the text still to insert at col, and how many bytes after col
-- it replaces. nil when it does not apply there.
local function candidate(it, line, row, col, encoding)
  local text = it.insertText
  -- A snippet (StringValue) is not something dfill sends; skip it rather
  -- than insert its placeholders.
  if type(text) ~= "string" or text == "" then
    return nil
  end
  local sc, ec = col, col
  if it.range then
    local r = it.range
    if r.start.line ~= row or r["end"].line ~= row then
      return nil
    end
    sc = util.byte_from_char(line, r.start.character, encoding)
    ec = util.byte_from_char(line, r["end"].character, encoding)
  end
  if sc > col or ec < sc then
    return nil
  end
  if sc < col then
    -- The range starts before the cursor: what was typed there must be
    -- the start of the text.
    local typed = line:sub(sc + 1, col)
    if text:sub(1, #typed) ~= typed then
      return nil
    end
    text = text:sub(#typed + 1)
  end
  if text == "" then
    return nil
  end
  return { text = text, repl = math.max(ec, col) - col }
end

local function on_result(buf, req, err, result)
  local s = states[buf]
  if not s or s.pending ~= req then
    return -- superseded or cancelled
  end
  s.pending = nil
  M.status.last_latency_ms = (util.uv.hrtime() - req.t0) / 1e6
  if not s.sugg then
    render(buf) -- removes the denoising steps drawn meanwhile
  end
  if err then
    -- -32800 RequestCancelled (superseded), -32801 ContentModified.
    if err.code ~= -32800 and err.code ~= -32801 then
      M.status.last_error = err.message or vim.inspect(err)
    end
    return
  end
  M.status.answers = M.status.answers + 1
  if not api.nvim_buf_is_valid(buf) or api.nvim_buf_get_changedtick(buf) ~= req.tick then
    M.status.stale = M.status.stale + 1
    return
  end
  local row, col = cursor(buf)
  if row ~= req.row or col ~= req.col or not in_insert() or not M.enabled then
    M.status.stale = M.status.stale + 1
    return
  end
  local line = line_at(buf, row)
  local raw = type(result) == "table" and (result.items or result) or {}
  M.last_answer = { row = row, col = col, kind = req.kind, items = raw }
  local items = {}
  for _, it in ipairs(raw) do
    local c = candidate(it, line, row, col, req.encoding)
    if c then
      items[#items + 1] = c
    end
  end
  local index = 1
  if req.skip and #items > 1 and items[1].text == req.skip then
    index = 2
  end
  M.show_items(buf, items, index)
end

--- Shows candidates {text, repl} at the cursor: text goes in at the
--- cursor, replacing repl bytes after it. What an answer does; tests use
--- it to show texts of their own.
function M.show_items(buf, items, index)
  local row, col = cursor(buf)
  if not row then
    return
  end
  local s = state(buf)
  s.anchor = { row = row, col = col, tail = line_at(buf, row):sub(col + 1) }
  s.items = items
  if #items == 0 then
    s.sugg = nil
    render(buf)
    return
  end
  show(buf, index or 1)
end

--- Sends textDocument/inlineCompletion for the cursor's position in buf
--- (kind: M.INVOKED or M.AUTOMATIC). opts.skip: show the second candidate
--- when the first is this text. Returns whether a request went out.
function M.request(buf, kind, opts)
  opts = opts or {}
  local client = util.clients("dfill", buf)[1]
  if not client then
    return false
  end
  local row, col = cursor(buf)
  if not row then
    return false
  end
  local s = state(buf)
  M.cancel(buf)
  if kind == M.INVOKED and not opts.skip then
    M.clear(buf) -- asked for anew: the new candidates (or their steps) replace it
  end
  local line = line_at(buf, row)
  local encoding = client.offset_encoding or "utf-16"
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    position = { line = row, character = util.char_from_byte(line, col, encoding) },
    context = { triggerKind = kind },
  }
  local req = {
    client_id = client.id,
    tick = api.nvim_buf_get_changedtick(buf),
    row = row,
    col = col,
    kind = kind,
    encoding = encoding,
    skip = opts.skip,
    t0 = util.uv.hrtime(),
  }
  s.pending = req
  M.status.requests = M.status.requests + 1
  s.sending = true
  local ok, id = util.request(client, "textDocument/inlineCompletion", params, function(err, result)
    on_result(buf, req, err, result)
  end, buf)
  s.sending = false
  if not ok then
    s.pending = nil
    return false
  end
  req.id = id
  return true
end

--- Asks again after debounce_ms unless something else happens first.
function M.schedule(buf)
  local s = state(buf)
  stop_timer(s)
  local timer = util.uv.new_timer()
  s.timer = timer
  timer:start(config.get().debounce_ms, 0, vim.schedule_wrap(function()
    if s.timer ~= timer then
      return
    end
    stop_timer(s)
    if M.enabled and api.nvim_buf_is_valid(buf) and api.nvim_get_current_buf() == buf and in_insert() then
      M.request(buf, M.AUTOMATIC)
    end
  end))
end

-- Keeps the suggestion while what is typed matches it: the text between
-- its start and the cursor is its beginning, and the rest of the line is
-- as it was.
local function advance(buf, s, row, col)
  local g = s.sugg
  if not g or row ~= g.row or col < g.col then
    return false
  end
  local line = line_at(buf, row)
  if line:sub(col + 1) ~= g.tail then
    return false
  end
  local typed = line:sub(g.col + 1, col)
  if #typed >= #g.text or g.text:sub(1, #typed) ~= typed then
    return false
  end
  if #typed > 0 then
    g.text = g.text:sub(#typed + 1)
    g.col = col
    s.items = { { text = g.text, repl = g.repl } }
    s.index = 1
    s.anchor = { row = row, col = col, tail = g.tail }
  end
  render(buf)
  return true
end

local function on_event(buf)
  local s = states[buf]
  if not s or not M.enabled or not in_insert() then
    return
  end
  local row, col = cursor(buf)
  if not row then
    return
  end
  local tick = api.nvim_buf_get_changedtick(buf)
  local key = tick .. ":" .. row .. ":" .. col
  if s.last_key == key then
    return
  end
  s.last_key = key
  local req = s.pending
  if req and req.tick == tick and req.row == row and req.col == col and (util.uv.hrtime() - req.t0) / 1e6 < LOST_MS then
    return -- the request in flight is for this very state
  end
  if vim.fn.pumvisible() == 1 then
    M.cancel(buf)
    M.clear(buf)
    return
  end
  if advance(buf, s, row, col) then
    return
  end
  M.cancel(buf)
  M.clear(buf)
  if s.auto and config.get().auto_trigger then
    M.schedule(buf)
  end
end

--- Whether a suggestion is shown in buf.
function M.visible(buf)
  local s = states[buf]
  return s ~= nil and s.sugg ~= nil
end

--- The suggestion shown in buf: {row, col, text, repl, index, count}, or nil.
function M.current(buf)
  local s = states[buf]
  if not s or not s.sugg then
    return nil
  end
  local g = s.sugg
  return { row = g.row, col = g.col, text = g.text, repl = g.repl, index = s.index, count = #s.items }
end

--- Accepts the suggestion in buf: how = "all", "word" or "line". The text
--- goes in with nvim_buf_set_text and the cursor ends after it. Returns
--- whether anything was inserted.
function M.accept(buf, how)
  local s = states[buf]
  local g = s and s.sugg
  if not g then
    return false
  end
  local row, col = cursor(buf)
  if row ~= g.row or col ~= g.col then
    M.clear(buf)
    return false
  end
  local part = g.text
  if how == "word" then
    part = util.next_word(g.text)
  elseif how == "line" then
    part = util.next_line(g.text)
  end
  M.cancel(buf)
  local erow, ecol
  if #part >= #g.text then
    erow, ecol = util.insert(buf, g.row, g.col, g.col + g.repl, g.text)
    M.clear(buf)
  else
    erow, ecol = util.insert(buf, g.row, g.col, g.col, part)
    local rest = g.text:sub(#part + 1)
    local tail = line_at(buf, erow):sub(ecol + 1)
    s.anchor = { row = erow, col = ecol, tail = tail }
    s.items = { { text = rest, repl = g.repl } }
    s.index = 1
    s.sugg = { row = erow, col = ecol, text = rest, repl = g.repl, tail = tail }
  end
  api.nvim_win_set_cursor(0, { erow + 1, ecol })
  -- The events this edit fires are ours: do not ask again for the rest.
  s.last_key = api.nvim_buf_get_changedtick(buf) .. ":" .. erow .. ":" .. ecol
  render(buf)
  return true
end

--- Hides the suggestion and forgets the request in flight. Returns whether
--- one was shown.
function M.dismiss(buf)
  local had = M.visible(buf)
  M.cancel(buf)
  M.clear(buf)
  return had
end

--- Shows the next (delta 1) or previous (-1) candidate; with one
--- candidate, asks for several (an invoked request).
function M.cycle(buf, delta)
  local s = state(buf)
  if s.sugg and #s.items > 1 then
    show(buf, (s.index - 1 + delta) % #s.items + 1)
    return true
  end
  return M.request(buf, M.INVOKED, { skip = s.sugg and s.sugg.text })
end

-- Forgets the request in flight in buf without cancelling it: it will get
-- no answer (see LOST_MS).
local function forget(buf, req)
  local s = states[buf]
  if s and s.pending and (req == nil or s.pending == req) then
    s.pending = nil
    if not s.sugg and api.nvim_buf_is_valid(buf) then
      render(buf)
    end
  end
end

-- Inline completion requests of dfill clients seen through LspRequest
-- (Neovim 0.9+; before, nothing but this plugin asks for them):
--  * another one for a buffer supersedes ours at the server: forget ours;
--  * the latency of those Neovim's own inline completion sends (0.12+).
if vim.fn.exists("##LspRequest") == 1 then
  local sent = {} -- request id -> hrtime, for requests that are not ours
  api.nvim_create_autocmd("LspRequest", {
    group = api.nvim_create_augroup("dfill_ghost_requests", { clear = true }),
    callback = function(ev)
      local d = ev.data or {}
      local r = d.request or {}
      if r.method ~= "textDocument/inlineCompletion" then
        return
      end
      local c = vim.lsp.get_client_by_id(d.client_id)
      if not c or c.name ~= "dfill" then
        return
      end
      local s = states[ev.buf]
      local ours = s and s.pending and (s.sending or d.request_id == s.pending.id)
      if ours then
        return
      end
      if r.type == "pending" then
        sent[d.request_id] = util.uv.hrtime()
        if s and s.pending then
          forget(ev.buf)
        end
      elseif sent[d.request_id] then
        if r.type == "complete" then
          M.status.last_latency_ms = (util.uv.hrtime() - sent[d.request_id]) / 1e6
        end
        sent[d.request_id] = nil
      end
    end,
  })
end

--- Draws a dfill/denoise step (params {uri, position, step, steps, text})
--- while the request for that position is in flight.
function M.on_denoise(params)
  if type(params) ~= "table" or type(params.text) ~= "string" or not params.position then
    return
  end
  local buf, s
  for b, st in pairs(states) do
    if api.nvim_buf_is_valid(b) and vim.uri_from_bufnr(b) == params.uri then
      buf, s = b, st
    end
  end
  if not s or not s.pending or s.sugg or params.position.line ~= s.pending.row then
    return
  end
  local lines = util.lines(params.text)
  local ts = vim.bo[buf].tabstop
  local vcol = vim.fn.strdisplaywidth(line_at(buf, s.pending.row):sub(1, s.pending.col))
  local virt_lines = {}
  -- A step spans the whole canvas, masks included: a few lines show it.
  for i = 2, math.min(#lines, 8) do
    virt_lines[#virt_lines + 1] = { { util.expand_tabs(lines[i], 0, ts), "DfillDenoise" } }
  end
  place_mark(s, buf, s.pending.row, s.pending.col, { { util.expand_tabs(lines[1], vcol, ts), "DfillDenoise" } }, virt_lines)
  M.status.denoise_steps = M.status.denoise_steps + 1
  if params.step == params.steps then
    -- The answer follows the last step; without one, the request was lost.
    local req = s.pending
    vim.defer_fn(function()
      forget(buf, req)
    end, 2000)
  end
end

--- Starts watching buf: requests while typing in insert mode (unless
--- opts.auto is false: then only on request), clearing on leaving insert
--- mode or the buffer.
function M.attach(buf, opts)
  local s = state(buf)
  s.auto = not (opts and opts.auto == false)
  if s.attached then
    return
  end
  s.attached = true
  local group = api.nvim_create_augroup("dfill_ghost_" .. buf, { clear = true })
  api.nvim_create_autocmd({ "TextChangedI", "CursorMovedI" }, {
    group = group,
    buffer = buf,
    callback = function()
      on_event(buf)
    end,
  })
  -- InsertEnter comes before the mode changes: look once it has.
  api.nvim_create_autocmd("InsertEnter", {
    group = group,
    buffer = buf,
    callback = function()
      vim.schedule(function()
        on_event(buf)
      end)
    end,
  })
  api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group,
    buffer = buf,
    callback = function()
      s.last_key = nil
      M.cancel(buf)
      M.clear(buf)
    end,
  })
  api.nvim_create_autocmd({ "BufUnload" }, {
    group = group,
    buffer = buf,
    callback = function()
      M.detach(buf)
    end,
  })
end

--- Stops watching buf.
function M.detach(buf)
  if not states[buf] then
    return
  end
  M.cancel(buf)
  M.clear(buf)
  pcall(api.nvim_del_augroup_by_name, "dfill_ghost_" .. buf)
  states[buf] = nil
end

--- Clears every buffer's suggestion.
function M.clear_all()
  for buf in pairs(states) do
    M.cancel(buf)
    if api.nvim_buf_is_valid(buf) then
      M.clear(buf)
    end
  end
end

return M
