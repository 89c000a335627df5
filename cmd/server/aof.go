package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"kvstore/wal"
)

// parseSubcommand parses the flags of `kvstore-server NAME ...`. When it
// reports !ok the caller returns code: 0 after --help (usage printed), 2
// for a bad flag or a stray argument (the problem printed).
func parseSubcommand(fs *flag.FlagSet, args []string, name string, usage func(), stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return 0, false
		}
		fmt.Fprintf(stderr, "kvstore-server %s: %v\n", name, err)
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kvstore-server %s: unexpected argument %q\n", name, fs.Arg(0))
		return 2, false
	}
	return 0, true
}

// runAOF is `kvstore-server aof dump|check`: the log as a tool, like
// redis-check-aof. It returns the exit code: 0 fine, 1 the log has a
// problem left, 2 bad usage or an I/O failure.
func runAOF(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprint(stderr, `Usage:
  kvstore-server aof dump  [--data-dir D]          print every log record as a JSON line
  kvstore-server aof check [--data-dir D] [--fix]  validate every segment; --fix cuts the log
                                                   at the first bad record (the cut bytes are
                                                   kept in .broken files); stop the server first
`)
	}
	if len(args) == 0 {
		usage()
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("aof "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataDir := getenv(envName("data-dir"))
	if dataDir == "" {
		dataDir = "./data"
	}
	fs.StringVar(&dataDir, "data-dir", dataDir, "data directory (env KVSTORE_DATA_DIR)")
	fix := fs.Bool("fix", false, "with check: cut the log at the first bad record")
	if code, ok := parseSubcommand(fs, args[1:], "aof", usage, stderr); !ok {
		return code
	}
	switch cmd {
	case "dump":
		if *fix {
			fmt.Fprintln(stderr, "kvstore-server aof: --fix applies to check only")
			return 2
		}
		if err := wal.Dump(wal.OS, walDir(dataDir), stdout); err != nil {
			fmt.Fprintf(stderr, "kvstore-server aof dump: %v\n", err)
			return 2
		}
		return 0
	case "check":
		if *fix {
			// Fixing under a running server would cut a live log.
			lock, err := lockDataDir(dataDir)
			if err != nil {
				fmt.Fprintf(stderr, "kvstore-server aof check: %v\n", err)
				return 2
			}
			defer lock.release()
		}
		res, err := wal.Check(wal.OS, walDir(dataDir), *fix, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "kvstore-server aof check: %v\n", err)
			return 2
		}
		if !res.OK() {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "kvstore-server aof: unknown command %q (want dump or check)\n", cmd)
	usage()
	return 2
}
