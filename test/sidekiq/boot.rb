# frozen_string_literal: true

# What test/sidekiq.sh starts Sidekiq with (`sidekiq -r test/sidekiq/boot.rb`):
# the drop-in files from scripts/sidekiq/ loaded the way a Rails app would
# autoload them, and hooks that write each outcome to a file the test reads.
# Environment: R2BRIDGE_BIN (the binary), R2B_SIDEKIQ_OUT (a directory),
# REDIS_URL, and r2bridge's own S3_*/AWS_*/R2B_* settings.

require 'json'
require 'sidekiq'

# redis-rb 4.8 warns about Sidekiq 6.4's calls (Debian 12's pair) on every
# fetch: noise in the log the test reads, not ours to fix
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

here = File.expand_path('../../scripts/sidekiq', __dir__)
require File.join(here, 'app/lib/r2_bridge')
require File.join(here, 'app/workers/r2_bridge_upload_worker')

out = ENV.fetch('R2B_SIDEKIQ_OUT')

R2Bridge.configure do |c|
  c.binary = ENV.fetch('R2BRIDGE_BIN')
  c.timeout_s = 120
  c.on_uploaded = lambda do |params, result|
    File.write(File.join(out, "#{params['id']}.uploaded.json"), JSON.generate(result))
  end
  c.on_rejected = lambda do |params, error|
    File.write(File.join(out, "#{params['id']}.rejected.json"),
               JSON.generate('reason' => error.reason, 'message' => error.message))
  end
end
