// Package units formats quantities for people: the command-line tools'
// tables and summaries.
package units

import "fmt"

// Bytes is n in the largest binary unit it reaches: 512 B, 1.5 MiB.
func Bytes(n uint64) string {
	const units = "KMGTPE"
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/(1<<10), 0
	for v >= 1<<10 && i < len(units)-1 {
		v /= 1 << 10
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
