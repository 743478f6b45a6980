# frozen_string_literal: true

# config/initializers/r2_bridge.rb: settings for R2BridgeUploadWorker.
# See docs/mastodon.md. Every setting has a default; change what you need.

R2Bridge.configure do |c|
  # The r2bridge binary (a path, or a name looked up in PATH).
  c.binary = ENV.fetch('R2BRIDGE_BIN', '/usr/local/bin/r2bridge')

  # Mastodon's own settings file: r2bridge reads S3_*, AWS_* and R2B_* from it
  # (values already in the process environment win, as in Mastodon).
  c.env_file = ENV.fetch('R2BRIDGE_ENV_FILE', Rails.root.join('.env.production').to_s)

  # Extra environment for r2bridge only, e.g. a manifest shared by several
  # Sidekiq hosts:
  # c.env = { 'R2B_MANIFEST' => 'postgresql://r2bridge@db.internal/r2bridge' }

  # An upload taking longer than this is stopped and retried later.
  c.timeout_s = 900

  # Called after a successful upload with the job's params and r2bridge's
  # JSON (string keys). Store what Mastodon shows: the blurhash and the
  # per-style meta (width, height, aspect).
  c.on_uploaded = lambda do |params, result|
    media = MediaAttachment.find_by(id: params['id'])
    next if media.nil? # deleted meanwhile

    media.update_columns(
      blurhash: result['blurhash'],
      file_meta: (media.file_meta || {}).merge(result['meta'])
    )
  end

  # Called when r2bridge rejects the file (never retried). error.reason is
  # r2bridge's code (unsupported_type, too_large, ...).
  c.on_rejected = lambda do |params, error|
    Rails.logger.warn("r2bridge rejected attachment #{params['id']}: #{error.reason}")
  end
end
