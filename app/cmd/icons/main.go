// Command icons draws Parley's app icons into web/: a speech bubble on the
// theme colour at 192 and 512 px, and a maskable 512 px variant whose
// artwork stays inside the 80 % safe zone that launchers may crop to.
// It uses only the standard library so it runs without network access.
//
//	go run ./app/cmd/icons -out web
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

var (
	theme  = color.RGBA{0x1f, 0x6f, 0x5c, 0xff}
	paper  = color.RGBA{0xf4, 0xf1, 0xea, 0xff}
	accent = color.RGBA{0xe0, 0x9f, 0x3e, 0xff}
)

func main() {
	out := flag.String("out", "web", "directory to write the icons to")
	flag.Parse()
	icons := []struct {
		name     string
		size     int
		maskable bool
	}{
		{"icon-192.png", 192, false},
		{"icon-512.png", 512, false},
		{"icon-maskable-512.png", 512, true},
	}
	for _, ic := range icons {
		if err := write(filepath.Join(*out, ic.name), draw(ic.size, ic.maskable)); err != nil {
			fmt.Fprintln(os.Stderr, "icons:", err)
			os.Exit(1)
		}
	}
}

func write(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// draw renders the icon with 4×4 supersampling for smooth edges.
func draw(size int, maskable bool) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	s := float64(size)
	// A maskable icon is a full-bleed square; a plain one a rounded tile.
	corner := 0.22 * s
	scale := 1.0
	if maskable {
		corner, scale = 0, 0.72
	}
	const ss = 4
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			var r, g, b, a float64
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					px := (float64(x) + (float64(sx)+0.5)/ss) / s
					py := (float64(y) + (float64(sy)+0.5)/ss) / s
					c := shade(px, py, corner/s, scale)
					r += float64(c.R) * float64(c.A) / 255
					g += float64(c.G) * float64(c.A) / 255
					b += float64(c.B) * float64(c.A) / 255
					a += float64(c.A)
				}
			}
			n := float64(ss * ss)
			img.SetRGBA(x, y, color.RGBA{uint8(r / n), uint8(g / n), uint8(b / n), uint8(a / n)})
		}
	}
	return img
}

// shade returns the colour at (x, y) in unit coordinates.
func shade(x, y, corner, scale float64) color.RGBA {
	if !inRoundedRect(x, y, 0, 0, 1, 1, corner) {
		return color.RGBA{}
	}
	// Artwork coordinates, centred and scaled into the safe zone.
	u := (x-0.5)/scale + 0.5
	v := (y-0.5)/scale + 0.5
	// The bubble: a rounded rectangle with a tail at the bottom left.
	inBubble := inRoundedRect(u, v, 0.18, 0.22, 0.82, 0.68, 0.12)
	inTail := inTriangle(u, v, 0.28, 0.62, 0.44, 0.66, 0.24, 0.82)
	if inBubble || inTail {
		// Three dots: a message being typed.
		for i := 0; i < 3; i++ {
			cx := 0.34 + float64(i)*0.16
			if math.Hypot(u-cx, v-0.45) < 0.055 {
				if i == 2 {
					return accent
				}
				return theme
			}
		}
		return paper
	}
	return theme
}

func inRoundedRect(x, y, x0, y0, x1, y1, r float64) bool {
	if x < x0 || x > x1 || y < y0 || y > y1 {
		return false
	}
	cx := math.Max(x0+r, math.Min(x, x1-r))
	cy := math.Max(y0+r, math.Min(y, y1-r))
	return math.Hypot(x-cx, y-cy) <= r
}

func inTriangle(px, py, ax, ay, bx, by, cx, cy float64) bool {
	d1 := (px-bx)*(ay-by) - (ax-bx)*(py-by)
	d2 := (px-cx)*(by-cy) - (bx-cx)*(py-cy)
	d3 := (px-ax)*(cy-ay) - (cx-ax)*(py-ay)
	neg := d1 < 0 || d2 < 0 || d3 < 0
	pos := d1 > 0 || d2 > 0 || d3 > 0
	return !(neg && pos)
}
