# frozen_string_literal: true

# test/sidekiq.sh's window on Sidekiq, through Sidekiq's own API (REDIS_URL):
#   ruby ctl.rb enqueue PATH PARAMS_JSON   prints the job id
#   ruby ctl.rb sets                       {"retry":[...],"dead":[...],"queued":N,"processes":N}
#   ruby ctl.rb retry-now                  moves every job of the retry set to its queue
#                                          (what the scheduler does when the backoff expires)

require 'json'
require 'sidekiq'
require 'sidekiq/api'

# redis-rb 4.8 warns about Sidekiq 6.4's calls (Debian 12's pair): not ours to fix
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

def entry(e)
  { 'jid' => e.jid, 'class' => e.klass, 'args' => e.args, 'error_class' => e['error_class'],
    'error_message' => e['error_message'], 'retry_count' => e['retry_count'],
    'r2bridge_reject' => e['r2bridge_reject'] }
end

case ARGV[0]
when 'enqueue'
  # by class name, as a web process that does not load the worker would
  puts Sidekiq::Client.push('class' => 'R2BridgeUploadWorker', 'queue' => 'default',
                            'args' => [ARGV.fetch(1), JSON.parse(ARGV.fetch(2))])
when 'sets'
  puts JSON.generate('retry' => Sidekiq::RetrySet.new.map { |e| entry(e) },
                     'dead' => Sidekiq::DeadSet.new.map { |e| entry(e) },
                     'queued' => Sidekiq::Queue.new('default').size,
                     'processes' => Sidekiq::ProcessSet.new.size,
                     'busy' => Sidekiq::Workers.new.size)
when 'retry-now'
  Sidekiq::RetrySet.new.retry_all
else
  warn 'usage: ctl.rb enqueue PATH PARAMS_JSON | sets | retry-now'
  exit 2
end
