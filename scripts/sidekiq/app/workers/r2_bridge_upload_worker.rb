# frozen_string_literal: true

# R2BridgeUploadWorker: one Sidekiq job per attachment, running
# `r2bridge upload ... --json` through R2Bridge.upload (app/lib/r2_bridge.rb).
#
#   R2BridgeUploadWorker.perform_async(path, {
#     'id' => media.id, 'visibility' => 'private', 'account_id' => 1234,
#     'status_id' => 5678, 'audience' => [2001, 2002] })
#
# Outcomes:
#   uploaded        -> R2Bridge.config.on_uploaded(params, result) is called
#                      and the result (styles, meta, blurhash) returned
#   exit 75         -> R2Bridge::TemporaryFailure raised: Sidekiq retries with
#                      its exponential backoff
#   exit 3          -> logged at ERROR and R2Bridge::ConfigurationError raised:
#                      the job shows in the Retries tab with the message and
#                      runs again after the admin fixed the configuration
#   exit 4          -> not retried: logged with the reason,
#                      R2Bridge.config.on_rejected(params, error) is called
#                      and the job is put in the Dead set (error class
#                      R2Bridge::RejectedMedia, message = the reason)
#   exit 2 / 6      -> not retried either (a bad argument, a missing file):
#                      logged and put in the Dead set
#
# Putting the job in the Dead set ourselves (instead of raising) is what makes
# "do not retry" work on every Sidekiq from 6.x (Debian 12 ships 6.4, which
# has no `sidekiq_retry_in` => :kill) to 7.x.
#
# Drop-in path in a Mastodon tree: app/workers/r2_bridge_upload_worker.rb.

class R2BridgeUploadWorker
  include Sidekiq::Worker

  sidekiq_options queue: 'default'

  def perform(path, params = {})
    result = R2Bridge.upload(path, params)
    R2Bridge.config.on_uploaded&.call(params, result)
    logger.info("r2bridge: uploaded #{describe(params)}: #{result['styles'].map { |name, s| "#{name}=#{s['bucket']}/#{s['key']}" }.join(' ')}")
    result
  rescue R2Bridge::PermanentFailure => e
    logger.warn("#{e.message} (#{describe(params)}; not retried)")
    R2Bridge.config.on_rejected&.call(params, e) if e.is_a?(R2Bridge::RejectedMedia)
    bury(path, params, e)
    nil
  rescue R2Bridge::ConfigurationError => e
    logger.error("#{e.message} (#{describe(params)}): uploads cannot succeed until the configuration is fixed; Sidekiq will retry this job")
    raise
  end

  private

  def describe(params)
    p = params.to_h
    id = p['id'] || p[:id]
    id ? "attachment #{id}" : "key #{p['key'] || p[:key]}"
  end

  # Records the job in Sidekiq's Dead set with the reason, as Sidekiq itself
  # does when retries are exhausted, so that admins see it in the Web UI.
  def bury(path, params, error)
    now = Time.now.to_f
    job = {
      'class' => self.class.name,
      'args' => [path, params],
      'jid' => jid,
      'queue' => self.class.get_sidekiq_options['queue'].to_s,
      # the job's own retry option, so that "Retry" from the Dead tab runs it
      # with the usual behaviour (a temporary failure then retries again)
      'retry' => self.class.get_sidekiq_options['retry'],
      'created_at' => now,
      'failed_at' => now,
      'error_class' => error.class.name,
      'error_message' => error.message,
      'r2bridge_exit_code' => error.exit_code,
    }
    job['r2bridge_reject'] = error.reason if error.is_a?(R2Bridge::RejectedMedia)
    Sidekiq::DeadSet.new.kill(Sidekiq.dump_json(job), notify_failure: false)
  end
end
