// Command brotli compresses a file with brotli, for machines without the
// brotli CLI (make wasm prefers the CLI, which is faster).
//
//	go run ./app/cmd/brotli -q 11 -o web/app.wasm.br web/app.wasm
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/andybalholm/brotli"
)

func main() {
	q := flag.Int("q", brotli.BestCompression, "quality, 0-11")
	out := flag.String("o", "", "output file (default: input + .br)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: brotli [-q N] [-o out] file")
		os.Exit(2)
	}
	in := flag.Arg(0)
	dst := *out
	if dst == "" {
		dst = in + ".br"
	}
	if err := compress(in, dst, *q); err != nil {
		fmt.Fprintln(os.Stderr, "brotli:", err)
		os.Exit(1)
	}
}

// compress writes to a temporary file and renames it, so a server never
// serves a half-written .br.
func compress(in, dst string, q int) error {
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".brotli-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := brotli.NewWriterLevel(tmp, q)
	if _, err := io.Copy(w, src); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Close(); err != nil {
		tmp.Close()
		return err
	}
	// CreateTemp makes the file 0600: a server running as another user
	// could not read it and would answer 500 for app.wasm to every browser
	// that accepts br. Assets are for everyone to read.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
