package node

import (
	"time"

	"github.com/tsubame-rt/tsubame/node/autogrow"
)

// ModulesConfig is the [modules] table: the module store and hot install.
type ModulesConfig struct {
	// MaxBytes bounds one module: an upload, an install order's fetch, a
	// module a peer serves. Larger ones are refused before anything else.
	MaxBytes int `toml:"max_bytes"`
	// KeepOld is how long a module version that is no longer current stays
	// loaded after the last step that saved a continuation in it here (and
	// at least until that LP's deadline), for LPs suspended in it.
	KeepOld time.Duration `toml:"keep_old"`
}

// AutogrowConfig is the [autogrow] table: installing a component on an idle
// node when every holder is saturated (node/autogrow).
type AutogrowConfig = autogrow.Config

// Defaults for [modules] and [autogrow]; docs/config.md says why.
var (
	defaultModules = ModulesConfig{
		MaxBytes: 16 << 20,
		KeepOld:  time.Minute,
	}
	defaultAutogrow = AutogrowConfig{
		Enabled:      false,
		High:         1.0,
		Low:          0.5,
		Sustain:      2 * time.Second,
		Cooldown:     10 * time.Second,
		MaxPerMinute: 6,
		IdleRemove:   time.Minute,
	}
)

// validateInstall checks the hot-install keys.
func (c Config) validateInstall(bad func(key, format string, args ...any)) {
	m := c.Modules
	if m.MaxBytes < 1024 {
		bad("modules.max_bytes", "%d is below 1024", m.MaxBytes)
	}
	if m.MaxBytes > 1<<30 {
		bad("modules.max_bytes", "%d exceeds 1 GiB", m.MaxBytes)
	}
	if m.KeepOld < time.Second {
		bad("modules.keep_old", "%v is below 1s: LPs suspended in an old version need it", m.KeepOld)
	}
	a := c.Autogrow
	if a.High <= 0 {
		bad("autogrow.high", "%v is not positive", a.High)
	}
	if a.Low < 0 || a.Low >= a.High {
		bad("autogrow.low", "%v must be at least 0 and below autogrow.high (%v)", a.Low, a.High)
	}
	for key, d := range map[string]time.Duration{
		"autogrow.sustain": a.Sustain, "autogrow.cooldown": a.Cooldown, "autogrow.idle_remove": a.IdleRemove,
	} {
		if d <= 0 {
			bad(key, "%v is not positive", d)
		}
	}
	if a.MaxPerMinute < 1 {
		bad("autogrow.max_per_minute", "%d is below 1", a.MaxPerMinute)
	}
}
