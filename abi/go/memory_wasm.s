#include "textflag.h"

// func memoryPages() int32
// The size of linear memory in 64 KiB pages (memory.size), as the runtime's
// own currentMemory reads it.
TEXT ·memoryPages(SB), NOSPLIT, $0
	Get SP
	CurrentMemory
	I32Store ret+0(FP)
	RET
