package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// lock takes the lock file at path for the download of what: it creates
// the file with O_EXCL, writing "PID HOST" in it, and keeps its mtime fresh
// while held. A lock held by another live process is waited for (until ctx
// ends); one whose process is gone (on this host) or whose heartbeat
// stopped more than LockStale ago is stale and taken over. The returned
// function releases the lock.
func (c *Client) lock(ctx context.Context, path, what string) (release func(), err error) {
	poll, stale := c.LockPoll, c.LockStale
	if poll <= 0 {
		poll = time.Second
	}
	if stale <= 0 {
		stale = 2 * time.Minute
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	waited := false
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, werr := fmt.Fprintf(f, "%d %s\n", os.Getpid(), host)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				os.Remove(path)
				return nil, fmt.Errorf("lock %s: %w", path, werr)
			}
			return heartbeat(path, stale/4), nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		holder, st, isStale := lockState(path, host, stale)
		if st == nil {
			continue // released between our create and our look
		}
		if isStale {
			if now, err := os.Stat(path); err == nil && os.SameFile(now, st) {
				if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("lock %s, stale (%s): %w", path, holder, err)
				}
			}
			continue
		}
		if !waited {
			c.logf("%s: waiting for another pull (%s) that holds %s", what, holder, path)
			waited = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: waiting for the lock %s held by %s: %w", what, path, holder, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// lockState reads the lock file at path: who holds it ("pid N on HOST"),
// its FileInfo (nil when it is gone) and whether it is stale: its
// process, on this host, is gone, or its mtime is older than stale.
func lockState(path, host string, stale time.Duration) (holder string, st os.FileInfo, isStale bool) {
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, false
	}
	b, _ := os.ReadFile(path)
	fields := strings.Fields(string(b))
	holder = "a process that has not written its pid yet"
	if len(fields) == 2 {
		holder = "pid " + fields[0] + " on " + fields[1]
		if pid, err := strconv.Atoi(fields[0]); err == nil && fields[1] == host && pid > 0 && !processAlive(pid) {
			return holder, st, true
		}
	}
	return holder, st, time.Since(st.ModTime()) > stale
}

// heartbeat refreshes the mtime of the lock at path every interval until
// the returned release function is called, which then deletes the lock.
func heartbeat(path string, interval time.Duration) (release func()) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				os.Chtimes(path, now, now)
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		os.Remove(path)
	}
}
