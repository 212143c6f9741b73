// Command licensing-server-pg is the reference licensing server with one more
// store: -store postgres -dsn <connection string>. It lives in the pgstore
// module so that the reference server itself stays free of drivers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/server"
	"github.com/licensekit/licensing/pgstore"
)

// storeCloser stops the store's read cache, then closes the pool.
type storeCloser struct {
	st   *pgstore.Store
	pool *pgxpool.Pool
}

func (c storeCloser) Close() error {
	c.st.Close()
	c.pool.Close()
	return nil
}

func main() {
	var dsn string
	var cacheKeys int
	var m server.Main
	m = server.Main{
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dsn, "dsn", os.Getenv("LICENSING_DSN"), "PostgreSQL connection string for -store postgres (LICENSING_DSN)")
			fs.IntVar(&cacheKeys, "cache-keys", pgstore.DefaultCacheKeys, "-store postgres: key records kept in the read cache, kept fresh through LISTEN/NOTIFY; 0 turns the cache off (every validation reads PostgreSQL)")
		},
		Stores: map[string]func(context.Context) (licensing.Store, io.Closer, error){
			"postgres": func(ctx context.Context) (licensing.Store, io.Closer, error) {
				if dsn == "" {
					return nil, nil, errors.New("-store postgres needs -dsn")
				}
				pool, err := pgxpool.New(ctx, dsn)
				if err != nil {
					return nil, nil, fmt.Errorf("postgres: %w", err)
				}
				st := pgstore.New(pool)
				if err := st.Migrate(ctx); err != nil {
					pool.Close()
					return nil, nil, err
				}
				if cacheKeys < 0 {
					pool.Close()
					return nil, nil, errors.New("-cache-keys must be 0 (no cache) or more")
				}
				if cacheKeys > 0 {
					if err := st.StartCache(pgstore.CacheConfig{MaxKeys: cacheKeys, Logger: m.Logger()}); err != nil {
						pool.Close()
						return nil, nil, err
					}
				}
				return st, storeCloser{st, pool}, nil
			},
		},
	}
	os.Exit(m.Main(os.Args[1:]))
}
