# frozen_string_literal: true

# R2Bridge: runs `r2bridge upload ... --json` for one attachment and turns its
# exit code into something a Sidekiq job can act on. Plain Ruby (json, open3):
# no Rails, no Sidekiq here, so it can be unit-tested and called from a
# console. The Sidekiq side is R2BridgeUploadWorker.
#
# Drop-in path in a Mastodon tree: app/lib/r2_bridge.rb (Zeitwerk maps
# "r2_bridge" to R2Bridge). See docs/mastodon.md.
#
# Exit codes of r2bridge (docs/cli.md) and what they become here:
#
#   0   done                       -> a Hash (styles, meta, blurhash, ...)
#   75  temporary failure          -> TemporaryFailure   (retry with backoff)
#   3   configuration              -> ConfigurationError (fail loudly; retried,
#                                     so the backlog drains once fixed)
#   4   media rejected             -> RejectedMedia      (never retry)
#   2   bad arguments, 6 not found -> PermanentFailure   (never retry)
#   anything else, a signal, a
#   timeout, unreadable JSON       -> Error              (retry: unexpected)
#
# The command is always an argv array handed to exec directly: no shell ever
# sees a file name or an id.

require 'json'
require 'open3'

module R2Bridge
  VISIBILITIES = %w(public unlisted private direct).freeze

  EXIT_OK        = 0
  EXIT_USAGE     = 2
  EXIT_CONFIG    = 3
  EXIT_REJECTED  = 4
  EXIT_NOT_FOUND = 6
  EXIT_TEMPFAIL  = 75

  # Every failure of an upload. exit_code is nil when the process did not
  # exit normally (signal, timeout, could not start).
  class Error < StandardError
    attr_reader :exit_code, :details

    def initialize(message, exit_code: nil, details: {})
      super(message)
      @exit_code = exit_code
      @details = details
    end

    # Whether running the same job again later can succeed by itself.
    def retryable?
      true
    end
  end

  # Exit 75: network, timeout, 5xx, throttling after r2bridge's own retries.
  class TemporaryFailure < Error; end

  # Exit 3: a missing or invalid setting, or credentials the server refused.
  # Nothing will upload until an admin fixes it.
  class ConfigurationError < Error; end

  # Exits that retrying cannot fix.
  class PermanentFailure < Error
    def retryable?
      false
    end
  end

  # Exit 4: the file is not acceptable media. reason is r2bridge's reject
  # code (unsupported_type, too_large, too_many_pixels, ...).
  class RejectedMedia < PermanentFailure
    def reason
      details['reject']
    end
  end

  class Configuration
    # binary:    the r2bridge executable (a path, or a name found in PATH)
    # env_file:  Mastodon's .env.production, passed as --env-file (the
    #            process environment still wins, as in Mastodon)
    # env:       extra environment for the child, e.g. R2B_MANIFEST
    # timeout_s: an upload running longer is stopped (TERM, then KILL) and
    #            reported as a TemporaryFailure
    # on_uploaded(params, result), on_rejected(params, error): hooks the
    #            worker calls, e.g. to update the MediaAttachment
    attr_accessor :binary, :env_file, :env, :timeout_s, :on_uploaded, :on_rejected

    def initialize
      @binary = ENV.fetch('R2BRIDGE_BIN', 'r2bridge')
      @env_file = ENV['R2BRIDGE_ENV_FILE']
      @env = {}
      @timeout_s = 900
      @on_uploaded = nil
      @on_rejected = nil
    end
  end

  MAX_OUTPUT_BYTES = 1024 * 1024 # r2bridge prints one small JSON object
  KILL_GRACE_S = 5

  class << self
    def config
      @config ||= Configuration.new
    end

    def configure
      yield config
    end

    # The argv for one upload. params (string or symbol keys):
    #   visibility (required), account_id (required), id | key (one of them),
    #   status_id, audience (array of ids), class, claimed_type
    # Raises ArgumentError on anything malformed, before anything runs.
    def upload_argv(path, params, binary: config.binary, env_file: config.env_file)
      p = params.to_h.transform_keys(&:to_s)
      path = path.to_s
      raise ArgumentError, 'r2bridge: empty file path' if path.empty? || path.include?("\0")

      visibility = p['visibility'].to_s
      unless VISIBILITIES.include?(visibility)
        raise ArgumentError, "r2bridge: visibility must be one of #{VISIBILITIES.join(', ')}"
      end
      if p['id'].nil? == p['key'].nil?
        raise ArgumentError, "r2bridge: give either 'id' or 'key'"
      end

      argv = [binary.to_s, 'upload', '--json',
              '--visibility', visibility,
              '--account', id_arg(p['account_id'], 'account_id')]
      argv.push('--status', id_arg(p['status_id'], 'status_id')) unless p['status_id'].nil?
      audience = Array(p['audience'])
      unless audience.empty?
        argv.push('--audience', audience.map { |a| id_arg(a, 'audience') }.join(','))
      end
      if p['id'].nil?
        argv.push('--key', plain_arg(p['key'], 'key'))
      else
        argv.push('--id', id_arg(p['id'], 'id'))
      end
      argv.push('--class', plain_arg(p['class'], 'class')) unless p['class'].nil?
      argv.push('--claimed-type', plain_arg(p['claimed_type'], 'claimed_type')) unless p['claimed_type'].nil?
      argv.push('--env-file', env_file.to_s) unless env_file.nil? || env_file.to_s.empty?
      # '--' ends options: a file named '-x' stays a file
      argv.push('--', path)
    end

    # Uploads one file. Returns r2bridge's JSON as a Hash (string keys):
    # "styles" => { "original" => { "key", "bucket", "url", "content_type",
    # "size", "width", "height", "sha256", "etag" }, "small" => {...} },
    # "meta" (Mastodon's file.meta shape), "blurhash", "type", ...
    # Raises an R2Bridge::Error subclass otherwise (see the table above).
    def upload(path, params)
      argv = upload_argv(path, params)
      status, out, err = run(argv, timeout_s: config.timeout_s)
      interpret(status, out, err)
    end

    # The mapping from how the process ended to a result or an error; public
    # so that it can be tested without a process.
    # status: a Process::Status, or an Integer exit code.
    def interpret(status, out, err)
      code = status.is_a?(Integer) ? status : status.exitstatus
      json = last_json(out)
      msg = error_line(err, json)

      if code.nil?
        raise Error.new("r2bridge: upload ended by signal #{status.termsig}#{msg && ": #{msg}"}")
      end

      case code
      when EXIT_OK
        unless json.is_a?(Hash) && json['ok'] == true && json['styles'].is_a?(Hash)
          raise Error.new('r2bridge: exit 0 without the expected JSON result', exit_code: code)
        end
        json
      when EXIT_TEMPFAIL
        raise TemporaryFailure.new("r2bridge: temporary failure (exit 75): #{msg || 'no message'}",
                                   exit_code: code, details: json || {})
      when EXIT_CONFIG
        raise ConfigurationError.new("r2bridge: configuration error (exit 3): #{msg || 'no message'}",
                                     exit_code: code, details: json || {})
      when EXIT_REJECTED
        details = json || {}
        reason = details['reject'] || 'rejected'
        raise RejectedMedia.new("r2bridge: media rejected (#{reason}): #{details['message'] || msg}",
                                exit_code: code, details: details)
      when EXIT_USAGE, EXIT_NOT_FOUND
        raise PermanentFailure.new("r2bridge: upload failed (exit #{code}): #{msg || 'no message'}",
                                   exit_code: code, details: json || {})
      else
        raise Error.new("r2bridge: upload failed (exit #{code}): #{msg || 'no message'}",
                        exit_code: code, details: json || {})
      end
    end

    # Runs argv (no shell), returns [Process::Status, stdout, stderr]. Stops
    # the process after timeout_s seconds and raises TemporaryFailure.
    def run(argv, timeout_s:)
      raise ArgumentError, 'r2bridge: argv must be an array of at least two strings' unless argv.is_a?(Array) && argv.size >= 2

      child_env = config.env.to_h.transform_keys(&:to_s).transform_values { |v| v&.to_s }
      begin
        # its own process group: a timeout stops whatever it started too
        stdin, stdout, stderr, waiter = Open3.popen3(child_env, *argv.map(&:to_s), pgroup: true)
      rescue SystemCallError => e
        raise ConfigurationError.new("r2bridge: cannot run '#{argv.first}': #{e.message}")
      end
      stdin.close
      readers = [stdout, stderr].map { |io| Thread.new { read_capped(io) } }
      unless waiter.join(timeout_s)
        stop(waiter)
        readers.each(&:join)
        raise TemporaryFailure.new("r2bridge: upload did not finish within #{timeout_s} s: stopped")
      end
      out, err = readers.map(&:value)
      [waiter.value, out, err]
    ensure
      # also when the job is interrupted (Sidekiq shutdown): no orphan upload
      stop(waiter) if waiter&.alive?
      [stdout, stderr].each { |io| io&.close unless io&.closed? }
    end

    private

    def id_arg(value, name)
      s = value.to_s
      raise ArgumentError, "r2bridge: #{name} must be a non-negative integer, got #{value.inspect}" unless s.match?(/\A\d{1,19}\z/)

      s
    end

    def plain_arg(value, name)
      s = value.to_s
      raise ArgumentError, "r2bridge: #{name} is empty or holds control characters" if s.empty? || s.match?(/[[:cntrl:]]/)

      s
    end

    def read_capped(io)
      buf = +''
      while (chunk = io.readpartial(65_536))
        buf << chunk if buf.bytesize < MAX_OUTPUT_BYTES
      end
    rescue EOFError, IOError
      buf
    end

    # TERM to the child's process group, KILL after a grace period.
    def stop(waiter)
      Process.kill('TERM', -waiter.pid)
      Process.kill('KILL', -waiter.pid) unless waiter.join(KILL_GRACE_S)
      waiter.join
    rescue Errno::ESRCH, Errno::EPERM
      nil
    end

    def last_json(out)
      line = out.to_s.lines.map(&:strip).reject(&:empty?).last
      return nil if line.nil?

      JSON.parse(line)
    rescue JSON::ParserError
      nil
    end

    # The message to report: r2bridge's JSON message, else its last stderr line.
    def error_line(err, json)
      m = json['message'] if json.is_a?(Hash)
      m = err.to_s.lines.map(&:strip).reject(&:empty?).last if m.nil? || m.empty?
      m&.scrub&.delete_prefix('r2bridge: ')&.slice(0, 500)
    end
  end
end
