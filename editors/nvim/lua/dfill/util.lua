-- Small helpers shared by the dfill modules: version checks, the LSP client
-- calls whose shape changed between Neovim releases, position encodings and
-- text insertion.
local M = {}

M.uv = vim.uv or vim.loop

local has_cache = {}

--- Whether this Neovim is at least version v ("0.8", "0.11", ...).
function M.has(v)
  if has_cache[v] == nil then
    has_cache[v] = vim.fn.has("nvim-" .. v) == 1
  end
  return has_cache[v]
end

-- Neovim 0.11 made client functions methods (client:request); the dot form
-- is deprecated there and missing in later releases.
local method_style = M.has("0.11")

function M.request(client, method, params, handler, bufnr)
  if method_style then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.request_sync(client, method, params, timeout_ms, bufnr)
  if method_style then
    return client:request_sync(method, params, timeout_ms, bufnr)
  end
  return client.request_sync(method, params, timeout_ms, bufnr)
end

function M.notify(client, method, params)
  if method_style then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.cancel_request(client, id)
  if method_style then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

function M.stop(client, force)
  if method_style then
    return client:stop(force)
  end
  return client.stop(force)
end

function M.is_stopped(client)
  if method_style then
    return client:is_stopped()
  end
  return client.is_stopped()
end

--- The running LSP clients named name, optionally only those attached to bufnr.
function M.clients(name, bufnr)
  local all
  if vim.lsp.get_clients then
    all = vim.lsp.get_clients({ name = name, bufnr = bufnr })
  else
    all = {}
    local source = bufnr and vim.lsp.buf_get_clients(bufnr) or vim.lsp.get_active_clients()
    for _, c in pairs(source) do
      if c.name == name then
        all[#all + 1] = c
      end
    end
  end
  local live = {}
  for _, c in ipairs(all) do
    if not M.is_stopped(c) then
      live[#live + 1] = c
    end
  end
  return live
end

--- Converts a byte column of line into an LSP character offset in the
--- client's position encoding ("utf-8", "utf-16" or "utf-32").
function M.char_from_byte(line, col, encoding)
  col = math.max(0, math.min(col, #line))
  if encoding == "utf-8" then
    return col
  end
  if M.has("0.11") then
    return vim.str_utfindex(line, encoding or "utf-16", col, false)
  end
  local utf32, utf16 = vim.str_utfindex(line, col)
  if encoding == "utf-32" then
    return utf32
  end
  return utf16
end

--- Converts an LSP character offset on line into a byte column (clamped to
--- the line's length).
function M.byte_from_char(line, char, encoding)
  char = math.max(0, char)
  if encoding == "utf-8" then
    return math.min(char, #line)
  end
  local ok, col
  if M.has("0.11") then
    ok, col = pcall(vim.str_byteindex, line, encoding or "utf-16", char, false)
  else
    ok, col = pcall(vim.str_byteindex, line, char, encoding ~= "utf-32")
  end
  if not ok or not col then
    return #line
  end
  return math.min(col, #line)
end

--- Splits text into lines on "\n".
function M.lines(text)
  return vim.split(text, "\n", { plain = true })
end

--- The next word of text for a partial accept: leading white space
--- (newlines included) and then a run of word characters or a run of other
--- characters.
function M.next_word(text)
  return text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]+") or text:match("^%s+") or text
end

--- The next line of text for a partial accept: up to the first newline, or,
--- when text starts with a newline, that newline and the line after it.
function M.next_line(text)
  local from = text:sub(1, 1) == "\n" and 2 or 1
  local nl = text:find("\n", from, true)
  if not nl then
    return text
  end
  return text:sub(1, nl - 1)
end

--- Inserts text into buf at (row, col), 0-based with a byte column,
--- replacing the bytes up to end_col on the same row. Lines go in with
--- nvim_buf_set_text, never through complete(), which turns each newline
--- into a NUL byte on Neovim 0.7. Returns the 0-based row and byte column
--- just after the inserted text.
function M.insert(buf, row, col, end_col, text)
  local lines = M.lines(text)
  vim.api.nvim_buf_set_text(buf, row, col, row, end_col or col, lines)
  local last = row + #lines - 1
  local last_col = (#lines == 1 and col or 0) + #lines[#lines]
  return last, last_col
end

--- Expands tabs in s as they would display from virtual column vcol (0-based).
function M.expand_tabs(s, vcol, tabstop)
  if not s:find("\t", 1, true) then
    return s
  end
  local out = {}
  local col = vcol
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    if ch == "\t" then
      local n = tabstop - (col % tabstop)
      out[#out + 1] = string.rep(" ", n)
      col = col + n
    else
      out[#out + 1] = ch
      col = col + vim.fn.strdisplaywidth(ch)
    end
  end
  return table.concat(out)
end

--- Replaces empty tables with vim.empty_dict() so that they encode as JSON
--- objects ({}), not arrays ([]). Only the table itself: list values stay.
function M.object(t)
  if t == nil or (type(t) == "table" and next(t) == nil) then
    return vim.empty_dict()
  end
  return t
end

return M
