-- RTSP Digest authentication needs MD5(username:realm:secret) of each
-- user's password and each API key's secret. It is stored encrypted with
-- the credential key (AES-256-GCM, like camera passwords), never in clear;
-- users get theirs when their password is next set or used.
ALTER TABLE users ADD COLUMN digest_ha1 TEXT;
ALTER TABLE api_keys ADD COLUMN digest_ha1 TEXT;
