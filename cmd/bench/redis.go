package main

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisTarget is the --redis target: go-redis v9 with its defaults
// (RESP3 through HELLO 3) except for the pool, one connection per client
// as redis-benchmark opens, so that kvstore's Redis front and Redis itself
// can be driven by the same Go client and the same workload.
type redisTarget struct {
	c *redis.Client
}

// dialRedis connects to addr and waits, up to timeout, for a PING.
func dialRedis(ctx context.Context, addr string, clients int, timeout time.Duration) (*redisTarget, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: clients, MinIdleConns: clients,
		ReadTimeout: timeout, WriteTimeout: timeout})
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, notAnswering{addr, err}
	}
	return &redisTarget{c: c}, nil
}

func (t *redisTarget) Close() { t.c.Close() }

func (t *redisTarget) Set(ctx context.Context, key, value string, ttlSeconds int64) error {
	return t.c.Set(ctx, key, value, time.Duration(ttlSeconds)*time.Second).Err()
}

func (t *redisTarget) Get(ctx context.Context, key string) (bool, error) {
	err := t.c.Get(ctx, key).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

func (t *redisTarget) Delete(ctx context.Context, key string) (bool, error) {
	n, err := t.c.Del(ctx, key).Result()
	return n > 0, err
}
