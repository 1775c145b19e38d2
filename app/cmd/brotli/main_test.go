package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/andybalholm/brotli"
)

// The compressed copy is served by a server that may run as another user:
// it must be readable by all, and decompress to the input.
func TestCompressWritesAWorldReadableCopy(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "app.wasm")
	data := bytes.Repeat([]byte("parley wasm "), 10000)
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "app.wasm.br")
	if err := compress(in, dst, 5); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o644 {
		t.Fatalf("app.wasm.br has mode %o, want 644", mode)
	}
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(brotli.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the copy does not decompress to the input")
	}
}
