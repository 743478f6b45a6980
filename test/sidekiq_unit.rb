# frozen_string_literal: true

# Unit tests of scripts/sidekiq/app/lib/r2_bridge.rb: the argv it builds, the
# exit-code mapping, no shell between it and the binary, the timeout. Uses a
# stand-in binary (a shell script that records its argv and answers with a
# chosen exit code); the real binary, Redis and Sidekiq are test/sidekiq.sh's.
#   ruby test/sidekiq_unit.rb

require 'minitest/autorun'
require 'tmpdir'
require 'fileutils'
require_relative '../scripts/sidekiq/app/lib/r2_bridge'

class R2BridgeUnitTest < Minitest::Test
  OK_JSON = '{"ok":true,"type":"image/jpeg","blurhash":"LEHV6nWB2yk8pyo0adR*.7kCMdnj",' \
            '"styles":{"original":{"key":"a/original/x.jpg","bucket":"b","url":null}},' \
            '"meta":{"original":{"width":4,"height":3,"size":"4x3","aspect":1.3333}}}'

  def setup
    @dir = Dir.mktmpdir('r2b-sidekiq-unit')
    @fake = File.join(@dir, 'fake-r2bridge')
    # Records each argument on its own NUL-terminated record, prints
    # $FAKE_OUT and $FAKE_ERR, sleeps $FAKE_SLEEP, exits $FAKE_RC.
    File.write(@fake, <<~SH)
      #!/bin/sh
      for a in "$@"; do printf '%s\\0' "$a"; done >"#{@dir}/argv"
      [ -n "$FAKE_SLEEP" ] && sleep "$FAKE_SLEEP"
      [ -n "$FAKE_OUT" ] && printf '%s\\n' "$FAKE_OUT"
      [ -n "$FAKE_ERR" ] && printf '%s\\n' "$FAKE_ERR" >&2
      exit "${FAKE_RC:-0}"
    SH
    File.chmod(0o755, @fake)
    @saved = [R2Bridge.config.binary, R2Bridge.config.env_file, R2Bridge.config.env, R2Bridge.config.timeout_s]
    R2Bridge.config.binary = @fake
    R2Bridge.config.env_file = nil
    R2Bridge.config.env = {}
    R2Bridge.config.timeout_s = 30
  end

  def teardown
    R2Bridge.config.binary, R2Bridge.config.env_file, R2Bridge.config.env, R2Bridge.config.timeout_s = @saved
    FileUtils.rm_rf(@dir)
  end

  def fake(rc:, out: nil, err: nil, sleep_s: nil)
    R2Bridge.config.env = { 'FAKE_RC' => rc.to_s, 'FAKE_OUT' => out, 'FAKE_ERR' => err,
                            'FAKE_SLEEP' => sleep_s&.to_s }
  end

  def recorded_argv
    File.binread(File.join(@dir, 'argv')).split("\0")
  end

  PARAMS = { 'id' => 109_876_543_210_987_654, 'visibility' => 'direct', 'account_id' => 100,
             'status_id' => '7', 'audience' => [200, '201'] }.freeze

  # --- argv ---------------------------------------------------------------------

  def test_argv_full
    argv = R2Bridge.upload_argv('/m/x.jpg', PARAMS.merge('claimed_type' => 'image/png'), binary: 'r2b', env_file: '/e')
    assert_equal ['r2b', 'upload', '--json', '--visibility', 'direct', '--account', '100', '--status', '7',
                  '--audience', '200,201', '--id', '109876543210987654', '--claimed-type', 'image/png',
                  '--env-file', '/e', '--', '/m/x.jpg'], argv
  end

  def test_argv_key_and_symbol_keys
    argv = R2Bridge.upload_argv('f', { key: 'k/original/a.png', visibility: 'public', account_id: 1 }, binary: 'r2b', env_file: nil)
    assert_equal ['r2b', 'upload', '--json', '--visibility', 'public', '--account', '1', '--key', 'k/original/a.png', '--', 'f'], argv
  end

  def test_argv_refusals
    base = { 'id' => 1, 'visibility' => 'public', 'account_id' => 1 }
    [
      base.merge('visibility' => 'secret'),
      base.merge('visibility' => nil),
      base.merge('account_id' => '1; rm -rf /'),
      base.merge('account_id' => -1),
      base.merge('account_id' => nil),
      base.merge('status_id' => '7 8'),
      base.merge('audience' => [1, 'x']),
      base.merge('id' => '12345678901234567890'), # 20 digits: beyond int64
      base.merge('key' => 'k/original/a.png'),    # both id and key
      base.reject { |k, _| k == 'id' },           # neither
      base.reject { |k, _| k == 'id' }.merge('key' => "a\nb/original/x"),
    ].each do |params|
      assert_raises(ArgumentError, params.inspect) { R2Bridge.upload_argv('f', params) }
    end
    assert_raises(ArgumentError) { R2Bridge.upload_argv('', base) }
    assert_raises(ArgumentError) { R2Bridge.upload_argv("a\0b", base) }
  end

  def test_no_shell_between_the_worker_and_the_binary
    marker = File.join(@dir, 'pwned')
    path = "#{@dir}/a b; touch #{marker} $(touch #{marker}) `touch #{marker}` *.jpg"
    fake(rc: 0, out: OK_JSON)
    R2Bridge.upload(path, 'id' => 1, 'visibility' => 'public', 'account_id' => 1)
    assert_equal path, recorded_argv.last, 'the path arrives as one argument, byte for byte'
    assert_equal '--', recorded_argv[-2]
    refute File.exist?(marker), 'nothing in the path was run by a shell'
  end

  def test_a_path_starting_with_a_dash_stays_a_path
    fake(rc: 0, out: OK_JSON)
    R2Bridge.upload('--help', 'id' => 1, 'visibility' => 'public', 'account_id' => 1)
    assert_equal ['--', '--help'], recorded_argv.last(2)
  end

  # --- exit-code mapping --------------------------------------------------------

  def test_exit_0_returns_styles_meta_blurhash
    fake(rc: 0, out: OK_JSON)
    r = R2Bridge.upload('f', 'id' => 1, 'visibility' => 'public', 'account_id' => 1)
    assert_equal 'a/original/x.jpg', r['styles']['original']['key']
    assert_equal 4, r['meta']['original']['width']
    assert_equal 'LEHV6nWB2yk8pyo0adR*.7kCMdnj', r['blurhash']
  end

  def test_exit_0_without_json_is_an_unexpected_retryable_error
    fake(rc: 0, out: 'not json')
    e = assert_raises(R2Bridge::Error) { R2Bridge.upload('f', 'id' => 1, 'visibility' => 'public', 'account_id' => 1) }
    assert_equal R2Bridge::Error, e.class
    assert e.retryable?
  end

  def test_exit_75_is_a_temporary_failure
    fake(rc: 75, out: '{"ok":false,"error":"network","message":"cannot connect to \'127.0.0.1\'","retryable":true,"exit_code":75}',
         err: "r2bridge: cannot connect to '127.0.0.1'")
    e = assert_raises(R2Bridge::TemporaryFailure) { R2Bridge.upload('f', 'id' => 1, 'visibility' => 'public', 'account_id' => 1) }
    assert e.retryable?
    assert_equal 75, e.exit_code
    assert_includes e.message, "cannot connect to '127.0.0.1'"
  end

  def test_exit_3_is_a_configuration_error_with_the_message_from_stderr
    fake(rc: 3, err: 'r2bridge: private media needs R2B_PRIVATE_BUCKET (a bucket with no public domain)')
    e = assert_raises(R2Bridge::ConfigurationError) { R2Bridge.upload('f', 'id' => 1, 'visibility' => 'private', 'account_id' => 1) }
    assert_equal 'r2bridge: configuration error (exit 3): private media needs R2B_PRIVATE_BUCKET (a bucket with no public domain)', e.message
  end

  def test_exit_4_is_rejected_media_with_the_reason_and_not_retryable
    fake(rc: 4, out: '{"ok":false,"reject":"unsupported_type","message":"image/svg+xml is not accepted","exit_code":4}',
         err: 'r2bridge: rejected (unsupported_type): image/svg+xml is not accepted')
    e = assert_raises(R2Bridge::RejectedMedia) { R2Bridge.upload('f', 'id' => 1, 'visibility' => 'public', 'account_id' => 1) }
    refute e.retryable?
    assert_equal 'unsupported_type', e.reason
    assert_equal 'r2bridge: media rejected (unsupported_type): image/svg+xml is not accepted', e.message
  end

  def test_exits_2_and_6_are_permanent
    [2, 6].each do |rc|
      fake(rc: rc, err: "r2bridge: cannot open 'f': no such file")
      e = assert_raises(R2Bridge::PermanentFailure) { R2Bridge.upload('f', 'id' => 1, 'visibility' => 'public', 'account_id' => 1) }
      refute e.retryable?
      refute_kind_of R2Bridge::RejectedMedia, e
      assert_equal rc, e.exit_code
    end
  end

  def test_other_exits_are_unexpected_and_retryable
    [1, 5, 23, 134].each do |rc|
      fake(rc: rc, err: 'something')
      e = assert_raises(R2Bridge::Error) { R2Bridge.upload('f', 'id' => 1, 'visibility' => 'public', 'account_id' => 1) }
      assert_equal R2Bridge::Error, e.class, "exit #{rc}"
      assert e.retryable?
    end
  end

  def test_interpret_table
    {
      75 => R2Bridge::TemporaryFailure, 3 => R2Bridge::ConfigurationError, 4 => R2Bridge::RejectedMedia,
      2 => R2Bridge::PermanentFailure, 6 => R2Bridge::PermanentFailure, 1 => R2Bridge::Error
    }.each do |code, klass|
      e = assert_raises(R2Bridge::Error) { R2Bridge.interpret(code, '', '') }
      assert_equal klass, e.class, "exit #{code}"
    end
  end

  def test_a_signal_is_unexpected_and_retryable
    R2Bridge.config.binary = '/bin/sh'
    status, = R2Bridge.run(['/bin/sh', '-c', 'kill -KILL $$'], timeout_s: 10)
    e = assert_raises(R2Bridge::Error) { R2Bridge.interpret(status, '', '') }
    assert_includes e.message, 'signal 9'
    assert e.retryable?
  end

  def test_a_missing_binary_is_a_configuration_error
    R2Bridge.config.binary = File.join(@dir, 'no-such-r2bridge')
    assert_raises(R2Bridge::ConfigurationError) { R2Bridge.upload('f', 'id' => 1, 'visibility' => 'public', 'account_id' => 1) }
  end

  def test_a_hung_upload_is_stopped_and_temporary
    fake(rc: 0, out: OK_JSON, sleep_s: 60)
    R2Bridge.config.timeout_s = 1
    e = assert_raises(R2Bridge::TemporaryFailure) { R2Bridge.upload('f', 'id' => 1, 'visibility' => 'public', 'account_id' => 1) }
    assert_includes e.message, 'did not finish within 1 s'
  end
end
