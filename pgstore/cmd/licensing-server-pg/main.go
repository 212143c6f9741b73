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

type poolCloser struct{ *pgxpool.Pool }

func (p poolCloser) Close() error { p.Pool.Close(); return nil }

func main() {
	var dsn string
	m := server.Main{
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dsn, "dsn", os.Getenv("LICENSING_DSN"), "PostgreSQL connection string for -store postgres (LICENSING_DSN)")
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
				return st, poolCloser{pool}, nil
			},
		},
	}
	os.Exit(m.Main(os.Args[1:]))
}
