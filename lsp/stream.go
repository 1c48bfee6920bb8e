package lsp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"

	"go.lsp.dev/jsonrpc2"
	"go.uber.org/zap"
)

// maxFrame caps the Content-Length a frame may declare (jsonrpc2's cap).
const maxFrame = 1 << 30

// stream is a jsonrpc2.Stream with LSP Content-Length framing that survives
// bad input. jsonrpc2's own header stream ends the connection on a malformed
// header or body; an editor's server must not die because one message was
// wrong, so this one answers what it cannot parse with a ParseError (or
// InvalidRequest) response with a null id and reads on:
//
//   - a header block without a Content-Length, or with lines that are not
//     headers, is skipped up to the next line that holds "Content-Length:";
//   - a Content-Length too short leaves the rest of the body in front of the
//     next header, which the same resynchronisation skips;
//   - a Content-Length too long swallows the start of the next frame: when
//     the body does not parse but starts with a whole JSON value, that value
//     is the message and the bytes after it go back to be read again.
//
// Writes go through jsonrpc2's header stream.
type stream struct {
	in      *bufio.Reader
	pending []byte // bytes given back to be read before in
	out     jsonrpc2.Stream
	closer  io.Closer
	log     *zap.Logger

	// ended is closed when reading fails (the client closed the stream):
	// jsonrpc2 reports its connection done only once every handler has
	// returned, and the handlers of a session end only when it ends.
	ended     chan struct{}
	endedOnce sync.Once
}

func newStream(rwc io.ReadWriteCloser, log *zap.Logger) *stream {
	return &stream{
		in:     bufio.NewReaderSize(rwc, 64<<10),
		out:    jsonrpc2.NewHeaderStream(writeOnly{rwc}),
		closer: rwc,
		log:    log,
		ended:  make(chan struct{}),
	}
}

// writeOnly hides the reader of a connection from jsonrpc2's header stream,
// which is only used to write.
type writeOnly struct{ io.ReadWriteCloser }

func (writeOnly) Read([]byte) (int, error) { return 0, io.EOF }

// Write implements jsonrpc2.Stream.
func (s *stream) Write(ctx context.Context, msg jsonrpc2.Message) (int64, error) {
	return s.out.Write(ctx, msg)
}

// Close implements jsonrpc2.Stream.
func (s *stream) Close() error { return s.closer.Close() }

// Read implements jsonrpc2.Stream: it returns the next well-formed message,
// answering and skipping the malformed ones on the way.
func (s *stream) Read(ctx context.Context) (jsonrpc2.Message, int64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		body, n, err := s.readFrame()
		if err != nil {
			s.endedOnce.Do(func() { close(s.ended) })
			return nil, 0, err
		}
		msg, err := jsonrpc2.DecodeMessage(body)
		if err != nil {
			if k := firstValue(body); k > 0 && k < len(body) {
				// The declared length was too long and took in the start
				// of the next frame: give it back and decode the first
				// JSON value alone.
				s.unread(body[k:])
				body = body[:k]
				msg, err = jsonrpc2.DecodeMessage(body)
			}
		}
		if err != nil {
			s.log.Warn("dropping malformed message", zap.Error(err), zap.Int("bytes", len(body)), zap.ByteString("start", body[:min(len(body), 80)]))
			code := jsonrpc2.ErrParse
			if errors.Is(err, jsonrpc2.ErrInvalidRequest) {
				code = jsonrpc2.ErrInvalidRequest
			}
			if _, werr := s.out.Write(ctx, jsonrpc2.NewResponse(jsonrpc2.ID{}, nil, code)); werr != nil {
				return nil, 0, werr
			}
			continue
		}
		return msg, n, nil
	}
}

// readFrame reads one header block and the body it announces. The body is a
// fresh slice: decoded requests borrow it.
func (s *stream) readFrame() ([]byte, int64, error) {
	length, consumed := -1, 0
	for {
		line, err := s.readLine()
		if err != nil {
			return nil, 0, err
		}
		consumed += len(line)
		if isBlank(line) {
			if length > 0 {
				break
			}
			if consumed > len(line) {
				s.log.Warn("skipping a header block without a usable Content-Length")
			}
			length, consumed = -1, 0
			continue
		}
		k := indexFold(line, "content-length:")
		if k < 0 {
			if !isHeader(line) {
				s.log.Warn("skipping bytes that are not a header", zap.Int("bytes", len(line)))
			}
			continue
		}
		if k > 0 {
			s.log.Warn("skipping bytes before a header", zap.Int("bytes", k))
		}
		v := bytes.TrimSpace(line[k+len("content-length:"):])
		n, err := strconv.Atoi(string(v))
		if err != nil || n <= 0 || n > maxFrame {
			s.log.Warn("bad Content-Length", zap.ByteString("value", v))
			length = 0
			continue
		}
		length = n
	}
	body := make([]byte, length)
	k := copy(body, s.pending)
	s.pending = s.pending[k:]
	if _, err := io.ReadFull(s.in, body[k:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, 0, err
	}
	return body, int64(consumed + length), nil
}

// readLine returns the next line, with its '\n', from the given-back bytes
// and then the connection.
func (s *stream) readLine() ([]byte, error) {
	if len(s.pending) > 0 {
		if i := bytes.IndexByte(s.pending, '\n'); i >= 0 {
			line := s.pending[:i+1]
			s.pending = s.pending[i+1:]
			return line, nil
		}
	}
	rest, err := s.in.ReadBytes('\n')
	if len(s.pending) > 0 {
		rest = append(s.pending, rest...)
		s.pending = nil
	}
	if err != nil {
		if len(rest) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return rest, nil
}

// unread gives b back to be read before the rest of the connection.
func (s *stream) unread(b []byte) {
	s.pending = append(append([]byte(nil), b...), s.pending...)
}

// firstValue returns the length of the JSON value at the start of b, or 0
// when b does not start with one.
func firstValue(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v json.RawMessage
	if dec.Decode(&v) != nil {
		return 0
	}
	return int(dec.InputOffset())
}

func isBlank(line []byte) bool {
	return len(bytes.TrimRight(line, "\r\n")) == 0
}

// isHeader reports whether line looks like a "Name: value" header field.
func isHeader(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	for _, c := range line[:i] {
		if !(c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// indexFold returns the index of the first ASCII case-insensitive match of
// the lower-case pattern in b, or -1.
func indexFold(b []byte, pattern string) int {
	for i := 0; i+len(pattern) <= len(b); i++ {
		j := 0
		for j < len(pattern) && toLower(b[i+j]) == pattern[j] {
			j++
		}
		if j == len(pattern) {
			return i
		}
	}
	return -1
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
