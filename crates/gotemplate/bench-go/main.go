// Command bench-go times Go's text/template on the same workload as
// crates/gotemplate/benches/render.rs: render the chart template 2,000 times,
// parse 1 MiB of templates, and parse+render. Standard library only.
//
// Usage: go run . ../benches/data
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// conv applies the project's data model: JSON numbers without '.', 'e' or 'E' are int,
// others float64.
func conv(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := x.Int64(); err == nil {
				return int(i)
			}
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = conv(e)
		}
	case []any:
		for i, e := range x {
			x[i] = conv(e)
		}
	}
	return v
}

func perOp(d time.Duration, n int) string {
	return fmt.Sprintf("%.1f µs/op", float64(d.Microseconds())/float64(n))
}

func main() {
	dir := "../benches/data"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	chartBytes, err := os.ReadFile(filepath.Join(dir, "chart.tpl"))
	if err != nil {
		panic(err)
	}
	chart := string(chartBytes)
	valuesBytes, err := os.ReadFile(filepath.Join(dir, "values.json"))
	if err != nil {
		panic(err)
	}
	dec := json.NewDecoder(bytes.NewReader(valuesBytes))
	dec.UseNumber()
	var data any
	if err := dec.Decode(&data); err != nil {
		panic(err)
	}
	data = conv(data)

	t := template.Must(template.New("chart").Parse(chart))
	var first strings.Builder
	if err := t.Execute(&first, data); err != nil {
		panic(err)
	}
	for i := 0; i < 50; i++ {
		if err := t.Execute(io.Discard, data); err != nil {
			panic(err)
		}
	}
	// Five rounds of 400: the machine is shared, so the best round is the steadier figure.
	const renders, rounds = 2000, 5
	var total, best time.Duration
	best = time.Hour
	for r := 0; r < rounds; r++ {
		start := time.Now()
		for i := 0; i < renders/rounds; i++ {
			var b strings.Builder
			if err := t.Execute(&b, data); err != nil {
				panic(err)
			}
		}
		d := time.Since(start)
		total += d
		best = min(best, d)
	}
	fmt.Printf("render: %d lines, %d output bytes, %d renders in %.1f ms (%s; best round %s)\n",
		strings.Count(chart, "\n"), first.Len(), renders, float64(total.Microseconds())/1e3,
		perOp(total, renders), perOp(best, renders/rounds))

	const parseBytes = 1 << 20
	copies := (parseBytes + len(chart) - 1) / len(chart)
	start := time.Now()
	for i := 0; i < copies; i++ {
		template.Must(template.New(fmt.Sprintf("chart%d", i)).Parse(chart))
	}
	parse := time.Since(start)
	fmt.Printf("parse: %d bytes in %d templates in %.1f ms (%.1f MiB/s)\n",
		copies*len(chart), copies, float64(parse.Microseconds())/1e3,
		float64(copies*len(chart))/parse.Seconds()/float64(1<<20))

	const n = 100
	total, best = 0, time.Hour
	for r := 0; r < rounds; r++ {
		start := time.Now()
		for i := 0; i < n; i++ {
			t := template.Must(template.New("chart").Parse(chart))
			var b strings.Builder
			if err := t.Execute(&b, data); err != nil {
				panic(err)
			}
		}
		d := time.Since(start)
		total += d
		best = min(best, d)
	}
	fmt.Printf("parse+render: %d in %.1f ms (%s; best round %s)\n", n*rounds, float64(total.Microseconds())/1e3,
		perOp(total, n*rounds), perOp(best, n))
}
