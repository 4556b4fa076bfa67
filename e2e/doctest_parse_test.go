//go:build unix

package e2e

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A block is one fenced code block of a Markdown file, as docs_test.go sees
// it. The marker convention is documented in docs/contributing.md.
type block struct {
	file    string
	line    int // of the opening fence, 1-based
	lang    string
	run     bool     // marked doctest or doctest=SESSION
	norun   bool     // marked norun: deliberately not run
	session string   // blocks of one session in one file run in one shell, in order
	needs   []string // programs the block needs on PATH
	timeout string   // timeout=DURATION, "" for the default
	text    string
}

// shellLangs are the info-string languages that are always shell.
var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true, "zsh": true}

// commandLine recognises a shell command in an unlabelled block: a prompt,
// or a line starting with a command users of this project type.
var commandLine = regexp.MustCompile(`^\s*(\$ |(\./)?bin/tsubame\b|tsubame |make( |$)|curl |openssl |export |cd |go (build|run|test|install) )`)

// isShell says whether the block holds commands a user is meant to run, so it
// must be marked doctest or norun.
func (b block) isShell() bool {
	if shellLangs[b.lang] {
		return true
	}
	if b.lang != "" {
		return false
	}
	for _, l := range strings.Split(b.text, "\n") {
		if commandLine.MatchString(l) {
			return true
		}
	}
	return false
}

// parseBlocks returns every fenced block of a Markdown document. A marker
// word it does not know is an error, so a typo cannot turn a test off.
func parseBlocks(file, src string) ([]block, error) {
	var out []block
	var cur *block
	var fence string
	var body strings.Builder
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if cur == nil {
			if !strings.HasPrefix(trimmed, "```") && !strings.HasPrefix(trimmed, "~~~") {
				continue
			}
			fence = trimmed[:3]
			for strings.HasPrefix(trimmed[len(fence):], fence[:1]) {
				fence += fence[:1]
			}
			b := block{file: file, line: n}
			words := strings.Fields(trimmed[len(fence):])
			if len(words) > 0 {
				b.lang = words[0]
				words = words[1:]
			}
			for _, w := range words {
				key, val, _ := strings.Cut(w, "=")
				switch {
				case w == "doctest":
					b.run = true
				case key == "doctest" && val != "":
					b.run, b.session = true, val
				case w == "norun":
					b.norun = true
				case key == "needs" && val != "":
					b.needs = strings.Split(val, ",")
				case key == "timeout" && val != "":
					b.timeout = val
				default:
					return nil, fmt.Errorf("%s:%d: unknown word %q in the fence's info string (docs/contributing.md lists the markers)", file, n, w)
				}
			}
			if b.run && b.norun {
				return nil, fmt.Errorf("%s:%d: a block is either doctest or norun", file, n)
			}
			if b.run && !shellLangs[b.lang] {
				return nil, fmt.Errorf("%s:%d: a doctest block must be sh, bash or console, not %q", file, n, b.lang)
			}
			cur = &b
			body.Reset()
			continue
		}
		if strings.HasPrefix(trimmed, fence) && strings.TrimSpace(trimmed[len(fence):]) == "" {
			cur.text = body.String()
			out = append(out, *cur)
			cur = nil
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: fence never closed", file, cur.line)
	}
	return out, sc.Err()
}

// consoleStep is one `$ command` of a console block and the output shown
// under it.
type consoleStep struct {
	cmd    string
	expect []string
}

// parseConsole splits a console block into commands and expected output. A
// command continues on the next line after a trailing backslash.
func parseConsole(text string) []consoleStep {
	var steps []consoleStep
	cont := false
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case cont:
			steps[len(steps)-1].cmd += "\n" + l
		case strings.HasPrefix(l, "$ "):
			steps = append(steps, consoleStep{cmd: l[2:]})
		case len(steps) > 0:
			steps[len(steps)-1].expect = append(steps[len(steps)-1].expect, l)
		}
		cont = len(steps) > 0 && strings.HasSuffix(l, "\\") && (cont || strings.HasPrefix(l, "$ "))
	}
	return steps
}

// matchOutput compares a command's output with the lines a console block
// shows. A line "..." stands for any number of lines, and "..." inside a
// line for any text; trailing spaces are ignored. It returns "" on a match,
// or what differs.
func matchOutput(expect []string, got string) string {
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if got == "" {
		lines = nil
	}
	for len(expect) > 0 && strings.TrimSpace(expect[len(expect)-1]) == "" {
		expect = expect[:len(expect)-1]
	}
	if matchLines(expect, lines) {
		return ""
	}
	return fmt.Sprintf("want:\n%s\ngot:\n%s", strings.Join(expect, "\n"), strings.Join(lines, "\n"))
}

func matchLines(expect, lines []string) bool {
	if len(expect) == 0 {
		return len(lines) == 0
	}
	if strings.TrimSpace(expect[0]) == "..." {
		for i := 0; i <= len(lines); i++ {
			if matchLines(expect[1:], lines[i:]) {
				return true
			}
		}
		return false
	}
	if len(lines) == 0 || !matchLine(expect[0], lines[0]) {
		return false
	}
	return matchLines(expect[1:], lines[1:])
}

func matchLine(pattern, line string) bool {
	pattern, line = strings.TrimRight(pattern, " \t"), strings.TrimRight(line, " \t")
	parts := strings.Split(pattern, "...")
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(quoted, ".*") + "$").MatchString(line)
}

// loopbackPort finds the fixed loopback ports a doc names.
var loopbackPort = regexp.MustCompile(`\b(127\.0\.0\.1|localhost):([0-9]{4,5})\b`)

// remapPorts replaces each fixed loopback port in text by the port free
// gives it, the same one for every mention across the calls sharing ports,
// so a walk-through written with the ports a user would type runs beside
// other tests. Port 0 and ports below 1024 are left alone.
func remapPorts(text string, ports map[string]string, free func() (int, error)) (string, error) {
	var err error
	out := loopbackPort.ReplaceAllStringFunc(text, func(m string) string {
		host, port, _ := strings.Cut(m, ":")
		if n, _ := strconv.Atoi(port); n < 1024 {
			return m
		}
		p, ok := ports[port]
		if !ok {
			var n int
			if n, err = free(); err != nil {
				return m
			}
			p = strconv.Itoa(n)
			ports[port] = p
		}
		return host + ":" + p
	})
	return out, err
}
