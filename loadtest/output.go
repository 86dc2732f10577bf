package main

import (
	"io"
	"os"

	"github.com/parleychat/parley/loadtest/report"
)

// writeReports prints the final table and writes the JSON and HTML
// reports the flags ask for.
func writeReports(cfg config, run report.Run, stdout io.Writer) error {
	if err := report.Table(stdout, run); err != nil {
		return err
	}
	write := func(path string, render func(io.Writer, report.Run) error) error {
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := render(f, run); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write(cfg.jsonOut, report.JSON); err != nil {
		return err
	}
	return write(cfg.htmlOut, report.HTML)
}
