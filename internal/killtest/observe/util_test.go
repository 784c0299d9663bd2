package observe

import (
	"strconv"
	"unsafe"

	"github.com/proxyline/proxyline/internal/proctab"
)

func itoa(i int) string                    { return strconv.Itoa(i) }
func uintptrOf(p *int32) uintptr           { return uintptr(unsafe.Pointer(p)) }
func statOf(pid int) (proctab.Proc, error) { return proctab.Stat(pid) }
