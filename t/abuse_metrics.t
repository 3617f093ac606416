#!/usr/bin/perl
# Issue 18, item 6: the metrics add up.  Every refusal and every outcome
# once, then each counter's exact value, and
#   accepted = done + failed + canceled + running + queued + uploading
# both while jobs are in flight and once they have all ended.  One code
# per outcome: a refusal counts its code, an accepted job ends once.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;
use VconvAbuse;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4', size => '160x120', duration => 1);
# long enough to be still running when it is deleted, on any machine
my $slow = VconvNginx::make_media($dir, 'slow', duration => 60);

# one thread: one job runs, one waits, the next is refused
my $ng = VconvNginx->new(
    workers => 1,
    store_opts => 'max_size=100m ttl=1h',
    main => 'thread_pool vconvq threads=1;',
    http => "    vconv_thread_pool vconvq;\n"
          . "    vconv_max_queue 1;\n"
          . "    vconv_max_jobs_per_client 1 key=\$http_x_client;\n",
)->start;
my $c = VconvAbuse->new($ng->port);
my $mp4_body = do { open my $fh, '<:raw', $mp4 or die; local $/; <$fh> };

my %want_err;     # code => count
my %want = (accepted => 0, done => 0, failed => 0, canceled => 0);

sub refused {
    my ($r, $status, $code, $what) = @_;
    VconvNginx::is_api_error($r, $status, $code, "refused: $what");
    $want_err{$code}++;
}

sub settled {
    my ($what) = @_;
    # the answer can come before the job's end is counted
    VconvNginx::poll(10, sub {
        my $m = VconvAbuse::metrics($ng);
        my $n = 0;
        $n += $m->{"vconv_jobs_finished_total{result=\"$_\"}"}
            for qw(done failed canceled);
        $n == $want{done} + $want{failed} + $want{canceled};
    }) or diag("$what: the counters did not settle");
}

sub check {
    my ($what, %flight) = @_;
    settled($what);
    my $m = VconvAbuse::metrics($ng);
    is($m->{vconv_jobs_accepted_total}, $want{accepted}, "$what: accepted");
    for (qw(done failed canceled)) {
        is($m->{"vconv_jobs_finished_total{result=\"$_\"}"}, $want{$_},
           "$what: $_");
    }
    my %got_err = map { /code="(\w+)"/ ? ($1 => $m->{$_}) : () }
                  grep { /^vconv_job_errors_total/ } keys %$m;
    is_deeply(\%got_err, \%want_err, "$what: every error counter exact")
        or diag(explain(\%got_err));
    my $flight = 0;
    for (qw(uploading queued running)) {
        my $n = $m->{"vconv_jobs{state=\"$_\"}"};
        is($n, $flight{$_} // 0, "$what: $_ $n");
        $flight += $n;
    }
    is($m->{vconv_jobs_accepted_total},
       $m->{'vconv_jobs_finished_total{result="done"}'}
       + $m->{'vconv_jobs_finished_total{result="failed"}'}
       + $m->{'vconv_jobs_finished_total{result="canceled"}'} + $flight,
       "$what: accepted = done + failed + canceled + in flight");
}

# --- refused before they are jobs ------------------------------------------
refused($c->request('POST', '/api/jobs?format=xyz', $mp4_body),
        400, 'unknown_format', 'a bad option');
refused($c->request('POST', '/api/jobs?format=mp4&wait=1&wait=1', $mp4_body),
        400, 'duplicate_option', 'wait twice');
refused($c->request('POST', '/api/jobs?name=a&format=mp4&name=b', $mp4_body),
        400, 'duplicate_option', 'name twice');
refused($c->request('POST', '/api/jobs?format=mp4', $mp4_body,
                    'Content-Type' => 'multipart/form-data'),
        400, 'invalid_value', 'a form without a boundary');
{
    # the size alone refuses it: no body is sent
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ng->port) or die $!;
    print $s "POST /api/jobs?format=mp4 HTTP/1.1\r\nHost: x\r\n"
           . "Content-Length: 209715200\r\nConnection: close\r\n\r\n";
    local $/;
    my $raw = <$s>;
    my ($head, $body) = split /\r\n\r\n/, $raw // '', 2;
    my ($st) = ($head // '') =~ m{^HTTP/1\.1 (\d+)};
    my $json = eval { JSON::PP::decode_json($body) };
    refused({ status => $st // 0, json => $json, body => $body,
              headers => { 'content-type' => 'application/json' } },
            507, 'store_full', '200 MB over a 100 MB store');
}
check('after the refusals');

# --- accepted, ended -------------------------------------------------------
{
    my $r = $c->request('POST', '/api/jobs?format=mp4&height=96', $mp4_body);
    is($r->{status}, 202, 'a good upload: 202');
    $want{accepted}++;
    is($ng->wait_job($r->{json}{id}, 60)->{status}, 'done', '... done');
    $want{done}++;

    $r = $c->request('POST', '/api/jobs?format=mp4', "just some text\n" x 50);
    is($r->{status}, 202, 'a text upload: 202');
    $want{accepted}++;
    my $job = $ng->wait_job($r->{json}{id}, 60);
    is($job->{error} && $job->{error}{code}, 'unsupported_input',
       '... failed unsupported_input');
    $want{failed}++;
    $want_err{unsupported_input}++;

    $r = $c->request('POST', '/api/jobs?format=mp4', '');
    VconvNginx::is_api_error($r, 415, 'unsupported_input', 'an empty upload: 415');
    $want{accepted}++;
    $want{failed}++;
    $want_err{unsupported_input}++;

    my $form = "--XyZ\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\n"
             . "mp4\r\n--XyZ--\r\n";
    $r = $c->request('POST', '/api/jobs', $form,
                     'Content-Type' => 'multipart/form-data; boundary=XyZ');
    VconvNginx::is_api_error($r, 400, 'invalid_value', 'a form without a file: 400');
    $want{accepted}++;
    $want{failed}++;
    $want_err{invalid_value}++;

    # a form whose client goes halfway through
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ng->port) or die $!;
    my $part = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
             . "filename=\"a.mp4\"\r\n\r\n" . substr($mp4_body, 0, 2000);
    print $s "POST /api/jobs?format=mp4 HTTP/1.1\r\nHost: x\r\n"
           . "Content-Type: multipart/form-data; boundary=XyZ\r\n"
           . "Content-Length: " . (length($part) + 100000) . "\r\n\r\n$part";
    sleep 0.5;
    close $s;
    $want{accepted}++;
    $want{failed}++;
    $want_err{upload_aborted}++;
}
check('after the ended jobs');

# --- in flight, and the refusals that need them -----------------------------
my ($running, $queued);
{
    my $body = do { open my $fh, '<:raw', $slow or die; local $/; <$fh> };
    my $r = $c->request('POST', '/api/jobs?format=webm', $body,
                        'X-Client' => 'c1');
    is($r->{status}, 202, 'client c1\'s slow job: 202');
    $running = $r->{json}{id};
    $want{accepted}++;
    ok(VconvNginx::poll(30, sub {
        (VconvAbuse::metrics($ng)->{'vconv_jobs{state="running"}'} // 0) == 1;
    }), '... it runs');

    refused($c->request('POST', '/api/jobs?format=mp4', $mp4_body,
                        'X-Client' => 'c1'),
            429, 'too_many_jobs', 'client c1\'s second job');

    $r = $c->request('POST', '/api/jobs?format=mp4', $mp4_body,
                     'X-Client' => 'c2');
    is($r->{status}, 202, 'client c2\'s job: 202, queued behind it');
    $queued = $r->{json}{id};
    $want{accepted}++;

    $r = $c->request('POST', '/api/jobs?format=mp4', $mp4_body);
    refused($r, 503, 'queue_full', 'one more while one waits');
    like($r->{headers}{'retry-after'} // '', qr/^\d+$/, '... with Retry-After');
}
check('with jobs in flight', running => 1, queued => 1);

# the queued one is marked first (its DELETE waits until it has a thread
# and stops), else it would run as soon as the running one is gone
my $dq = $ng->delete($queued, async => 1);
sleep 1;    # for curl to send it: its answer comes only once it stopped
is($ng->delete($running)->{status}, 204, 'the running job is deleted');
is($dq->wait(30)->{status}, 204, 'the queued job is deleted, unrun');
$want{canceled} += 2;
$want_err{canceled} += 2;
check('after all ended');

$c->close;
$ng->assert_clean_log;
$ng->stop;

# --- vconv_max_jobs_per_client without key=: the client's address --------
{
    my $ng2 = VconvNginx->new(
        workers => 2,
        http => "    vconv_max_jobs_per_client 1;\n",
    )->start;
    my $r = $ng2->post_file('/api/jobs?format=webm', $slow, name => 's.mp4');
    is($r->{status}, 202, 'per address: the first job is taken');
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    $r = $ng2->post_file('/api/jobs?format=mp4', $mp4, name => 'm.mp4');
    VconvNginx::is_api_error($r, 429, 'too_many_jobs',
                             'per address: a second one in flight -> 429');
    like($r->{headers}{'retry-after'} // '', qr/^\d+$/, '... with Retry-After');
    is($ng2->delete($id)->{status}, 204, 'the first job is deleted');
    $r = $ng2->post_file('/api/jobs?format=mp4', $mp4, name => 'm.mp4');
    is($r->{status}, 202, 'then the next one is taken');
    $ng2->wait_job($r->{json}{id}, 60) if $r->{json};
    $ng2->assert_clean_log;
    $ng2->stop;
}

done_testing();
