package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// partial is a download in progress: the .incomplete file, the sha256 of
// the bytes in it, and how many there are.
type partial struct {
	f    *os.File
	h    hash.Hash
	have int64
}

// openPartial opens the .incomplete file at path, keeping what an earlier
// run left in it (up to size bytes) and hashing it.
func openPartial(path string, size int64) (*partial, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	p := &partial{f: f, h: sha256.New()}
	st, err := f.Stat()
	if err == nil && st.Size() > size {
		err = p.restart()
	} else if err == nil {
		p.have, err = io.Copy(p.h, io.NewSectionReader(f, 0, st.Size()))
	}
	if err == nil {
		_, err = f.Seek(p.have, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

// restart empties the file, for a server that sends the whole file again.
func (p *partial) restart() error {
	p.h.Reset()
	p.have = 0
	if err := p.f.Truncate(0); err != nil {
		return err
	}
	_, err := p.f.Seek(0, io.SeekStart)
	return err
}

// Write appends b to the file and the hash.
func (p *partial) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.h.Write(b[:n])
	p.have += int64(n)
	if err != nil {
		return n, &diskError{err}
	}
	return n, nil
}

// diskError is a failure to write the file: no retry mends it.
type diskError struct{ err error }

func (e *diskError) Error() string { return e.err.Error() }
func (e *diskError) Unwrap() error { return e.err }

// errStalled ends a request from which no byte arrived for StallTimeout.
var errStalled = errors.New("no data for too long")

// download fetches f, what in messages, from u into the .incomplete file at path, resuming
// what is there, retrying a connection that breaks off, and checks the
// sha256 of the whole: on a mismatch the file is deleted.
func (c *Client) download(ctx context.Context, u, what, path string, f repoFile, progress func(done, total int64)) error {
	p, err := openPartial(path, f.Size)
	if err != nil {
		return err
	}
	defer p.f.Close()
	if progress != nil {
		progress(p.have, f.Size)
	}
	retries, delay := c.Retries, c.RetryDelay
	if retries <= 0 {
		retries = 4
	}
	if delay <= 0 {
		delay = time.Second
	}
	for failed := 0; p.have < f.Size; {
		before := p.have
		err := c.get1(ctx, u, what, p, f.Size, progress)
		if err == nil {
			continue
		}
		if !retryable(err) || ctx.Err() != nil {
			if errors.Is(err, ErrChecksum) {
				p.f.Close()
				os.Remove(path)
			}
			return err
		}
		if p.have > before {
			failed = 0 // it moved: keep resuming
		}
		if failed++; failed > retries {
			return fmt.Errorf("%w (gave up after %d tries; run the pull again to resume from byte %d)", err, failed, p.have)
		}
		wait := min(delay<<(failed-1), 30*time.Second)
		c.logf("%s: %v; resuming from byte %d in %s", redactString(u), err, p.have, wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	if got := hex.EncodeToString(p.h.Sum(nil)); got != f.SHA256 {
		p.f.Close()
		os.Remove(path)
		return fmt.Errorf("%w: the download's sha256 is %s, the Hub lists %s; the file was deleted", ErrChecksum, got, f.SHA256)
	}
	if err := p.f.Sync(); err != nil {
		return err
	}
	return p.f.Close()
}

// retryable reports whether a download that failed with err may be resumed:
// a broken or stalled connection or a server error, but not a refusal, a
// wrong file or a full disk.
func retryable(err error) bool {
	var de *diskError
	var he *HTTPError
	switch {
	case errors.As(err, &de), errors.Is(err, ErrChecksum), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &he):
		return he.Status >= 500 || he.Status == http.StatusTooManyRequests || he.Status == http.StatusRequestTimeout
	}
	return true
}

// get1 makes one request for the rest of the file what, from byte p.have,
// and appends what arrives to p.
func (c *Client) get1(ctx context.Context, u, what string, p *partial, size int64, progress func(done, total int64)) error {
	stall := c.StallTimeout
	if stall <= 0 {
		stall = time.Minute
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer timer.Stop()

	hdr := http.Header{"Accept-Encoding": {"identity"}} // byte offsets of the file itself, never of a gzip stream
	if p.have > 0 {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", p.have))
	}
	resp, err := c.get(ctx, u, hdr)
	if err != nil {
		return causeOf(ctx, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || start != p.have {
			if err := p.restart(); err != nil {
				return &diskError{err}
			}
			return fmt.Errorf("GET %s: Content-Range %q does not start at byte %d; starting over", redactURL(resp.Request.URL), resp.Header.Get("Content-Range"), start)
		}
		if total >= 0 && total != size {
			return fmt.Errorf("%w: the server's file is %d bytes, the Hub lists %d", ErrChecksum, total, size)
		}
	case http.StatusOK:
		if p.have > 0 { // the server ignored the range: take it all again
			if err := p.restart(); err != nil {
				return &diskError{err}
			}
		}
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return fmt.Errorf("%w: the server's file is %d bytes, the Hub lists %d", ErrChecksum, resp.ContentLength, size)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if err := p.restart(); err != nil {
			return &diskError{err}
		}
		return fmt.Errorf("GET %s: %d %s at byte %d; starting over", redactURL(resp.Request.URL), resp.StatusCode, http.StatusText(resp.StatusCode), p.have)
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return statusError(resp, body, "file "+what, c.Token != "")
	}
	buf := make([]byte, 1<<20)
	for p.have < size {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			timer.Reset(stall)
			if int64(n) > size-p.have {
				return fmt.Errorf("%w: the server sent more than the %d bytes the Hub lists", ErrChecksum, size)
			}
			if _, err := p.Write(buf[:n]); err != nil {
				return err
			}
			if progress != nil {
				progress(p.have, size)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("GET %s: at byte %d: %w", redactURL(resp.Request.URL), p.have, causeOf(ctx, err))
		}
	}
	if p.have < size {
		return fmt.Errorf("GET %s: the connection ended at byte %d of %d: %w", redactURL(resp.Request.URL), p.have, size, io.ErrUnexpectedEOF)
	}
	return nil
}

// causeOf returns the watchdog's errStalled when it ended the request,
// err otherwise.
func causeOf(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
		return errStalled
	}
	return err
}

// contentRange parses "bytes START-END/TOTAL"; total is -1 for "*".
func contentRange(s string) (start, total int64, ok bool) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, false
	}
	rng, tot, ok := strings.Cut(rest, "/")
	first, _, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

// redactString is redactURL for a URL held as a string.
func redactString(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}
