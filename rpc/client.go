package rpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// MaxResponseBytes is the largest message a kvstore server sends: a
// GetResponse with the longest value one log record can hold (64 MiB
// with its framing), plus the response's own fields. The server's
// --max-value-bytes is at most that value's length, so a client that
// receives this much can read every value any server may hold, whatever
// its limits (grpc's default is 4 MiB). rpc does not import the log:
// TestMaxResponseBytesHoldsTheLargestValue keeps the two in step.
const MaxResponseBytes = 64<<20 + 1<<10

// ClientOptions are what a kvstore client needs to reach a server: TLS
// (all fields empty: plaintext) and a bearer token (empty: none).
type ClientOptions struct {
	TLS   ClientTLSOptions
	Token string
}

// DialOptions turns o into grpc.DialOptions for grpc.NewClient. Calls may
// receive up to MaxResponseBytes.
func DialOptions(o ClientOptions) ([]grpc.DialOption, error) {
	cfg, err := ClientTLS(o.TLS)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if cfg != nil {
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxResponseBytes)),
	}
	if o.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds{o.Token}))
	}
	return opts, nil
}

// tokenCreds sends "authorization: Bearer TOKEN" with every call.
type tokenCreds struct{ token string }

func (b tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false so tokens also work over plaintext on
// loopback, where protected mode lets a server run without TLS; anywhere
// else, use TLS, or the token crosses the network in clear.
func (b tokenCreds) RequireTransportSecurity() bool { return false }
