package evalharness

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Write writes the report into dir: report.json (everything, every sample)
// and one CSV of samples per timeline (join-tsubame-p2c.csv, ...). It
// returns the files written.
func (r *Report) Write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "report.json")
	if err := os.WriteFile(path, append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	files := []string{path}
	for _, set := range []struct {
		what string
		runs []TimelineRun
	}{{"join", r.Join}, {"kill", r.Kill}} {
		for _, run := range set.runs {
			path := filepath.Join(dir, set.what+"-"+strings.ReplaceAll(run.System, " ", "-")+".csv")
			f, err := os.Create(path)
			if err != nil {
				return files, err
			}
			err = run.Series.WriteCSV(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return files, fmt.Errorf("write %s: %w", path, err)
			}
			files = append(files, path)
		}
	}
	return files, nil
}

// ReadReport reads a report.json that Write wrote.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// WrongReplies counts the failed requests a run must answer for: every
// throughput scenario's, and Tsubame's in the join and the kill. nginx's
// failures across a join (its reload) or a kill are the baseline's result,
// reported beside Tsubame's, not a fault of the run.
func (r *Report) WrongReplies() int {
	n := 0
	for _, set := range [][]ScalePoint{r.Scale, r.Small, r.Hetero, r.Split} {
		for _, p := range set {
			n += p.Failed
		}
	}
	for _, run := range append(slices.Clone(r.Join), r.Kill...) {
		if strings.HasPrefix(run.System, "tsubame") {
			n += run.Failed
		}
	}
	return n
}
