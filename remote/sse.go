package remote

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxEventLine bounds one line of an event stream (one step's JSON).
const maxEventLine = 1 << 20

// doneData is the data of the event that ends an OpenAI-style stream.
var doneData = []byte("[DONE]")

// readEvents reads a Server-Sent Events stream and calls fn with the data
// of each event (its data lines joined by newlines), until an event whose
// data is [DONE], the end of the stream, or an error from fn. sawDone
// reports whether [DONE] came. Comments and the fields other than data are
// skipped; an event the stream ends in the middle of is dropped, as the
// SSE specification says.
func readEvents(r io.Reader, fn func(data []byte) error) (sawDone bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var data []byte
	pending := false
	for sc.Scan() {
		line := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		switch {
		case len(line) == 0:
			if !pending {
				continue
			}
			if bytes.Equal(data, doneData) {
				return true, nil
			}
			if err := fn(data); err != nil {
				return false, err
			}
			data, pending = data[:0], false
		case line[0] == ':':
			// A comment: keep-alive pings.
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			if string(field) != "data" {
				continue
			}
			value = bytes.TrimPrefix(value, []byte(" "))
			if pending {
				data = append(data, '\n')
			}
			data, pending = append(data, value...), true
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return false, errTooLarge
		}
		return false, err
	}
	return false, nil
}
