package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHTTPE2E starts `dfill http` with the embedded model on a free
// loopback port, completes the sample file's empty if body through
// POST /v1/fim/completions with an API key, and stops it with SIGTERM,
// after which it exits 0.
func TestHTTPE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dfill binary")
	}
	bin, err := buildDfill()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DFILL_TEST_KEY", "test-key")
	cmd, url := startHTTP(t, bin, "--api-key-env", "DFILL_TEST_KEY", "--threads", "2")
	defer cmd.Process.Kill()

	data, err := os.ReadFile("testdata/sample.go")
	if err != nil {
		t.Fatal(err)
	}
	prefix, suffix, _ := strings.Cut(string(data), "\tif err != nil {\n")
	body, _ := json.Marshal(map[string]any{
		"prompt": prefix + "\tif err != nil {\n", "suffix": suffix, "max_tokens": 6, "stop": []string{"\n"},
	})
	// The server listens before the model has loaded, and answers 503
	// until it has.
	var resp *http.Response
	for {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/v1/fim/completions", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer test-key")
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			break
		}
		resp.Body.Close()
		time.Sleep(10 * time.Millisecond)
	}
	defer resp.Body.Close()
	var got struct {
		Model   string
		Choices []struct {
			Text         string
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, decoding: %v", resp.StatusCode, err)
	}
	if len(got.Choices) != 1 || got.Choices[0].Text != "\t\treturn err" || got.Choices[0].FinishReason != "stop" || got.Model == "" {
		t.Errorf("answer %+v, want \"\\t\\treturn err\" cut at the stop sequence", got)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit status 0", err)
	}
}

// TestServeRemoteToHTTPE2E runs the path a team uses: an editor's dfill
// serve with the remote backend asks a dfill http (the embedded model, an
// API key) on loopback; the completion goes editor → server → HTTP →
// engine and back, and is post-processed and validated on the way.
func TestServeRemoteToHTTPE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dfill binary")
	}
	bin, err := buildDfill()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DFILL_TEST_KEY", "test-key")
	cmd, url := startHTTP(t, bin, "--api-key-env", "DFILL_TEST_KEY", "--threads", "2", "--log-level", "debug")
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	// The server listens before its model has loaded (503 until then).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still %d after a minute", resp.StatusCode)
		}
	}
	// A span of 4 tokens: a remote server fills the one span it is asked
	// for, and the embedded model fills a long one with more than the line
	// (the local engine denoises spans of 4, 8 and the setting at once).
	serveAndCompleteWith(t, map[string]any{"maxTokens": 4}, "return err", "--backend", "remote", "--remote-url", url,
		"--remote-protocol", "dfill", "--remote-api-key-env", "DFILL_TEST_KEY", "--log-level", "debug")
}

// startHTTP starts bin's dfill http on a free loopback port with args and
// returns it and the URL it prints.
func startHTTP(t *testing.T, bin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"http", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Stderr = &testWriter{t: t}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("reading the address: %v", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "dfill http: listening on ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		cmd.Process.Kill()
		t.Fatalf("stdout %q does not give a loopback address", line)
	}
	return cmd, url
}
