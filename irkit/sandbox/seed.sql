-- A Django-like schema for the practice database: the tables the runbook's checks read.
-- Safe to run again.
CREATE TABLE IF NOT EXISTS django_migrations (
    id bigserial PRIMARY KEY,
    app varchar(255) NOT NULL,
    name varchar(255) NOT NULL,
    applied timestamptz NOT NULL,
    UNIQUE (app, name)
);

CREATE TABLE IF NOT EXISTS tenancy_tenant (
    id bigserial PRIMARY KEY,
    name varchar(100) NOT NULL UNIQUE,
    schema_name varchar(63) NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS auth_user (
    id serial PRIMARY KEY,
    username varchar(150) NOT NULL UNIQUE,
    email varchar(254) NOT NULL DEFAULT '',
    is_active boolean NOT NULL DEFAULT true,
    last_login timestamptz,
    date_joined timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS accounting_journalentry (
    id bigserial PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenancy_tenant (id),
    posted_at timestamptz NOT NULL DEFAULT now(),
    memo text NOT NULL DEFAULT '',
    amount numeric(14, 2) NOT NULL DEFAULT 0
);

INSERT INTO django_migrations (app, name, applied) VALUES
    ('contenttypes', '0001_initial', now() - interval '90 days'),
    ('contenttypes', '0002_remove_content_type_name', now() - interval '90 days'),
    ('auth', '0001_initial', now() - interval '90 days'),
    ('auth', '0012_alter_user_first_name_max_length', now() - interval '90 days'),
    ('tenancy', '0001_initial', now() - interval '60 days'),
    ('tenancy', '0002_tenant_schema_name', now() - interval '30 days'),
    ('accounting', '0001_initial', now() - interval '60 days'),
    ('accounting', '0002_journalentry_memo', now() - interval '7 days')
ON CONFLICT (app, name) DO NOTHING;

INSERT INTO tenancy_tenant (name, schema_name) VALUES
    ('Acme Trading', 'acme'),
    ('Everest Foods', 'everest'),
    ('Lumbini Textiles', 'lumbini'),
    ('Pokhara Tours', 'pokhara')
ON CONFLICT (name) DO NOTHING;

INSERT INTO auth_user (username, email, last_login)
SELECT 'user' || n, 'user' || n || '@example.com',
       now() - (n || ' minutes')::interval
FROM generate_series(1, 40) AS n
ON CONFLICT (username) DO NOTHING;

-- Keep the practice users "active": spread their last logins over the last 40 minutes.
UPDATE auth_user SET last_login = now() - ((id % 40) || ' minutes')::interval;
