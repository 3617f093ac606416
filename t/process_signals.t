#!/usr/bin/perl
# nginx's process model with a transcode running: reload, graceful quit,
# log reopen (USR1) and binary upgrade (USR2, WINCH, QUIT) lose nothing.
# The old worker waits for its job idle in its event loop (under 10 % CPU
# on its event-loop thread), a wait=1 client gets its file, an event
# stream its terminal event; worker_shutdown_timeout bounds the wait and
# the job then ends failed "interrupted".  A download across a reload
# ends whole; a job still queued for a thread is taken over by a new
# worker.  A raw upload slower than its conversion (jpg, duration=1) ends
# done, the rest of the body dropped.  One info line per finished job in
# the error log, with its id.  PS_ONLY=part,... runs only those parts.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;

my $dir = tempdir('vconv-ps-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub ffmpeg {
    my @cmd = ('ffmpeg', '-nostdin', '-v', 'error', '-y', @_);
    system(@cmd) == 0 or die "ffmpeg failed: @cmd\n";
}

# a 1080p input: format=mp4 with a duration of some seconds keeps a
# transcode running for several seconds on a busy two-core machine
my $long = "$dir/long1080.mp4";
ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=25:duration=20',
       '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=20',
       '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
       '-c:a', 'aac', '-shortest', $long);

# streamable (Matroska), converted while it arrives
my $mkv = "$dir/stream.mkv";
ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=20',
       '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=20',
       '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
       '-g', '25', '-c:a', 'aac', '-b:a', '64k', '-shortest', $mkv);

my $LONG = 'format=mp4&duration=6';
my $SHORT = 'format=mp4&duration=3';     # a second job, when one runs
my $HZ = 100;

# PS_ONLY=reload,slow runs only those parts
sub want {
    my ($name) = @_;
    return !$ENV{PS_ONLY} || grep { $_ eq $name } split /,/, $ENV{PS_ONLY};
}     # USER_HZ, the unit of /proc/<pid>/stat times

# utime + stime of the event-loop thread (its tid is the pid)
sub loop_ticks {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/task/$pid/stat" or return undef;
    my $st = <$fh> // return undef;
    $st =~ s/^.*\)\s+//s;
    my @f = split ' ', $st;
    return $f[11] + $f[12];
}

# the event-loop thread's state letter: R running or runnable, S asleep
sub loop_state {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/task/$pid/stat" or return '';
    my $st = <$fh> // return '';
    return $st =~ /\)\s+(\S)/ ? $1 : '';
}

# nginx -s <signal> on the instance's configuration; $? is its status
sub nginx_signal {
    my ($ng, $signal) = @_;
    my $args = join ' ', map { "'$_'" } $ng->_args;
    return `'$VconvNginx::NGINX' $args -s $signal 2>&1`;
}

# nginx -s reload, back once the new workers are up; unlike the
# harness's reload it does not wait for the old ones to go
sub reload_now {
    my ($ng) = @_;
    my %old = map { $_ => 1 } @{ $ng->worker_pids };
    $ng->_write_conf;
    my $out = nginx_signal($ng, 'reload');
    die "nginx -s reload failed: $out" if $?;
    VconvNginx::poll(10, sub {
        (grep { !$old{$_} } @{ $ng->worker_pids }) >= $ng->{workers};
    }) or die "no new workers after reload\n";
}

sub alive { my ($pid) = @_; return $pid && kill(0, $pid) }

# the job folder a wait=1 upload made (its id is not answered yet)
sub new_job {
    my ($ng, %before) = @_;
    return VconvNginx::poll(20, sub {
        my ($id) = grep { !$before{$_} && /^[0-9a-f]{32}$/ }
                   @{ $ng->store_entries };
        $id;
    });
}

sub wait_running {
    my ($ng, $id) = @_;
    return VconvNginx::poll(30, sub {
        my $j = $ng->get("/api/jobs/$id")->{json} // {};
        ($j->{status} // '') =~ /^(running|done|failed|canceled)$/
            ? $j->{status} : undef;
    }, 0.1);
}

sub job_json_on_disk {
    my ($ng, $id) = @_;
    open my $fh, '<', $ng->store . "/$id/job.json" or return {};
    local $/;
    return eval { VconvNginx->json->decode(<$fh>) } // {};
}

sub info_line {
    my ($ng, $id, $status) = @_;
    my @l = grep { /\[info\].*vconv: job \Q$status\E\b.*\Q$id\E/ }
            split /\n/, $ng->error_log;
    return scalar @l;
}

sub probe_ok {
    my ($file, $name) = @_;
    my $p = VconvNginx::probe($file);
    ok($p && $p->{video} && $p->{video}{codec_name} eq 'h264',
       "$name: the file is H.264 video")
        or diag('ffprobe: ' . ($p ? VconvNginx->json->encode($p->{format})
                                  : 'failed'));
}


# --- reload during a wait=1 job: the client gets the file ------------------
if (want('reloadwait')) {
    my $ng = VconvNginx->new(workers => 2)->start;
    my %before = map { $_ => 1 } @{ $ng->store_entries };
    my $out = "$dir/reload-wait.mp4";
    my $p = $ng->post_file("/api/jobs?$LONG&wait=1", $long, async => 1,
                           max_time => 300, output => $out);
    my $id = new_job($ng, %before) // 'none';
    is(wait_running($ng, $id), 'running', '[reload, wait=1] job running');

    # an event stream on it, served by one of the old workers
    my $sse = $ng->get("/api/jobs/$id/events", async => 1, no_buffer => 1,
                       max_time => 120);
    sleep 0.5;

    my @old = @{ $ng->worker_pids };
    my $t0 = time;
    $ng->reload;
    my $r = $p->wait(300);
    is($r->{status}, 200, '[reload, wait=1] 200 after the reload')
        or diag("curl exit $r->{curl_exit}: $r->{curl_err}");
    probe_ok($out, '[reload, wait=1]');
    diag(sprintf '[reload, wait=1] answered %.1f s after the reload',
                 time - $t0);

    my $s = $sse->wait(60);
    is($s->{curl_exit}, 0, '[reload] the event stream of the old worker '
                           . 'ended cleanly')
        or diag("curl exit $s->{curl_exit}: $s->{curl_err}");
    like($s->{body}, qr/^event:\s?(done|progress)$/m,
         '[reload] ... with events on it');

    ok(VconvNginx::poll(15, sub { !grep { alive($_) } @old }),
       '[reload, wait=1] the old workers exit');
    ok(info_line($ng, $id, 'done'), '[reload, wait=1] info line with the id');
    $ng->assert_clean_log('[reload, wait=1] no alert');
    $ng->stop;
}


# --- reload during a job: done, and the old worker idles while it waits ----
if (want('reload')) {
    my $ng = VconvNginx->new(workers => 2)->start;
    my $r = $ng->post_file("/api/jobs?$LONG", $long, name => 'reload.mp4');
    is($r->{status}, 202, '[reload] job taken');
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    is(wait_running($ng, $id), 'running', '[reload] job running');

    my %old = map { $_ => 1 } @{ $ng->worker_pids };
    my $t0 = time;
    reload_now($ng);

    # the old worker still there is the one that holds the job
    VconvNginx::poll(5, sub { (grep { alive($_) } keys %old) < 2 });
    my ($holder) = grep { alive($_) } sort keys %old;
    my $job = $ng->get("/api/jobs/$id")->{json} // {};
    SKIP: {
        skip 'the job ended before the old worker could be measured', 3
            unless $holder && ($job->{status} // '') eq 'running';

        # CPU time alone understates a spinner on a crowded machine: a
        # thread in sched_yield() is runnable all the time, an idle event
        # loop sleeps in epoll_wait()
        my ($t0, $a) = (time, loop_ticks($holder));
        my ($n, $r) = (0, 0);
        while (time - $t0 < 2) {
            $n++;
            $r++ if loop_state($holder) eq 'R';
            sleep 0.02;
        }
        my ($t1, $b) = (time, loop_ticks($holder));
        my $still = ($ng->get("/api/jobs/$id")->{json} // {})->{status};
        skip 'the job ended during the measurement', 3
            unless defined $a && defined $b && ($still // '') eq 'running';

        my $pct = ($b - $a) / $HZ / ($t1 - $t0) * 100;
        cmp_ok($pct, '<', 10, sprintf('[reload] the old worker\'s event '
                                      . 'loop uses %.1f %% CPU', $pct));
        cmp_ok($r / $n, '<', 0.2, sprintf('[reload] ... and is runnable in '
                                         . '%d of %d samples', $r, $n));
        ok(alive($holder), '[reload] the old worker waits for its job');
    }

    $job = $ng->wait_job($id, 120) // {};
    my $t_done = time;
    is($job->{status}, 'done', '[reload] the job ends done');
    my $gone = VconvNginx::poll(10, sub { !grep { alive($_) } keys %old });
    ok($gone, '[reload] the old worker exits once its job is done');
    diag(sprintf '[reload] old worker gone %.1f s after the reload '
                 . '(job done %.1f s after it)', time - $t0, $t_done - $t0);
    $r = $ng->download($id, "$dir/reload.mp4");
    is($r->{status}, 200, '[reload] output served by the new workers');
    probe_ok("$dir/reload.mp4", '[reload]');
    ok(info_line($ng, $id, 'done'), '[reload] one info line with the id');
    $ng->assert_clean_log('[reload] no alert');
    $ng->stop;
}


# --- USR1 (log reopen) during a job: no effect on it ----------------------
if (want('usr1')) {
    my $ng = VconvNginx->new(workers => 2)->start;
    my $r = $ng->post_file("/api/jobs?$SHORT", $long);
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    is(wait_running($ng, $id), 'running', '[USR1] job running');
    my @w = @{ $ng->worker_pids };
    kill 'USR1', $ng->master_pid;
    my $job = $ng->wait_job($id, 120) // {};
    is($job->{status}, 'done', '[USR1] the job ends done');
    is_deeply($ng->worker_pids, \@w, '[USR1] same workers');
    $r = $ng->download($id, "$dir/usr1.mp4");
    probe_ok("$dir/usr1.mp4", '[USR1]');
    like($ng->error_log, qr/reopening logs/, '[USR1] the logs were reopened');
    $ng->assert_clean_log('[USR1] no alert');
    $ng->stop;
}


# --- -s quit during a wait=1 job, and a second job: done before exit -------
if (want('quit')) {
    my $ng = VconvNginx->new(workers => 2)->start;
    my $r = $ng->post_file("/api/jobs?$LONG", $long);
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    my %before = map { $_ => 1 } @{ $ng->store_entries };
    my $out = "$dir/quit-wait.mp4";
    my $p = $ng->post_file("/api/jobs?$SHORT&wait=1", $long, async => 1,
                           max_time => 300, output => $out);
    my $wid = new_job($ng, %before) // 'none';
    is(wait_running($ng, $id), 'running', '[quit] job running');
    is(wait_running($ng, $wid), 'running', '[quit, wait=1] job running');

    my $master = $ng->master_pid;
    my $t0 = time;
    my $q = nginx_signal($ng, 'quit');
    is($?, 0, '[quit] nginx -s quit') or diag($q);

    $r = $p->wait(300);
    is($r->{status}, 200, '[quit, wait=1] 200 after -s quit')
        or diag("curl exit $r->{curl_exit}: $r->{curl_err}");
    probe_ok($out, '[quit, wait=1]');

    my $exited = VconvNginx::poll(120, sub {
        waitpid($master, WNOHANG) == $master || !alive($master);
    });
    ok($exited, '[quit] the master exits');
    diag(sprintf '[quit] master gone %.1f s after -s quit', time - $t0);
    delete $VconvNginx::LIVE{$master};
    $ng->{pid} = undef;

    my $j = job_json_on_disk($ng, $id);
    is($j->{status}, 'done', '[quit] job.json: done before the master '
                             . 'exited');
    ok(-s $ng->store . "/$id/output", '[quit] its output is there');
    ok(info_line($ng, $id, 'done') && info_line($ng, $wid, 'done'),
       '[quit] an info line for each job');
    unlike($ng->error_log, qr/open socket .* left in connection|aborting/,
           '[quit] no connection left behind');
    $ng->assert_clean_log('[quit] no alert');

    # the next start serves it from job.json
    $ng->start;
    is(($ng->get("/api/jobs/$id")->{json} // {})->{status}, 'done',
       '[quit] after a new start the job is done');
    $ng->stop;
}


# --- binary upgrade: USR2, WINCH, QUIT during a job -----------------------
#
# nginx ignores USR2 in a master whose parent is the one it started under
# (it would be the new binary of an upgrade in progress): as under
# systemd or after daemonizing, this master's parent exits once the
# master has started.  It
# runs as /usr/sbin/nginx, an absolute path, which the new binary is
# executed from.
sub launch_detached {
    my ($ng) = @_;
    $ng->{port} = VconvNginx::free_port();
    $ng->_write_conf;
    my @cmd = ($VconvNginx::NGINX, $ng->_args);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setsid();
        my $pid2 = fork // POSIX::_exit(1);
        if ($pid2 == 0) {
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', $ng->prefix . '/stderr.log';
            open STDERR, '>>', $ng->prefix . '/stderr.log';
            exec { $cmd[0] } @cmd or POSIX::_exit(127);
        }
        # nginx notes its parent at start: this one must still be it
        my $t = time + 10;
        sleep 0.05 until -s $ng->prefix . '/nginx.pid' || time > $t;
        POSIX::_exit(0);
    }
    waitpid($pid, 0);
    my $pidf = $ng->prefix . '/nginx.pid';
    my $master = VconvNginx::poll(10, sub {
        open my $fh, '<', $pidf or return undef;
        my $n = <$fh> // return undef;
        $n =~ /^(\d+)/ && VconvNginx::_port_open($ng->port) ? $1 : undef;
    });
    die "detached nginx did not start\n" unless $master;
    $ng->{pid} = $master;
    VconvNginx::poll(10, sub { @{ $ng->worker_pids } >= $ng->{workers} });
    return $master;
}

sub stop_detached {
    my ($pid) = @_;
    return unless $pid && $pid > 1;
    kill 'QUIT', $pid;
    VconvNginx::poll(15, sub { !alive($pid) }) or kill 'KILL', $pid;
}

if (want('upgrade')) {
    # one transcode thread: a second job is queued behind the first; the
    # new master's zone is not the old one, so no new worker takes the
    # job the old worker offers, and it comes back to the old worker
    my $ng = VconvNginx->new(workers => 1,
                             main => 'thread_pool one threads=1;',
                             http => 'vconv_thread_pool one;');
    my $old = launch_detached($ng);
    my $r = $ng->post_file("/api/jobs?$LONG", $long);
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    $r = $ng->post_file("/api/jobs?$SHORT", $long);
    my $id2 = $r->{json} ? $r->{json}{id} : 'none';
    is(wait_running($ng, $id), 'running', '[upgrade] job running');
    is(($ng->get("/api/jobs/$id2")->{json} // {})->{status}, 'queued',
       '[upgrade] a second job queued');

    my $pidf = $ng->prefix . '/nginx.pid';
    kill 'USR2', $old;
    my $new = VconvNginx::poll(15, sub {
        return undef unless -f "$pidf.oldbin";
        open my $fh, '<', $pidf or return undef;
        my $n = <$fh> // return undef;
        chomp $n;
        $n =~ /^\d+$/ && $n != $old && alive($n) ? $n : undef;
    });
    ok($new, '[upgrade] USR2 started a new master')
        or diag(join "\n", grep { /USR2|binary/ } split /\n/,
                $ng->error_log);
    my $new_workers = $new && VconvNginx::poll(15, sub {
        my @k = @{ VconvNginx::_children($new) };
        @k >= $ng->{workers} ? \@k : undef;
    });
    ok($new_workers, '[upgrade] ... with its workers');

    kill 'WINCH', $old;     # the old workers quit gracefully
    kill 'QUIT', $old;      # the old master follows once they are gone

    my $job = $ng->wait_job($id, 120) // {};
    ok(VconvNginx::poll(120, sub { !alive($old) }),
       '[upgrade] the old master exits once its worker\'s jobs ended');
    ok(info_line($ng, $id, $job->{status} // 'none'),
       '[upgrade] info line with the id');
    ok(info_line($ng, $id2, 'done') || info_line($ng, $id2, 'failed'),
       '[upgrade] ... and the second job\'s');

    $ng->{pid} = $new;
    like($ng->error_log,
         qr/no new worker took the queued job, it runs here.*\Q$id2\E/,
         '[upgrade] the offered job came back to the old worker');
    is($job->{status}, 'done', '[upgrade] the job ends done');
    $r = $ng->get("/api/jobs/$id");
    is($r->{json} && $r->{json}{status}, 'done',
       '[upgrade] the new master serves the finished job');
    $r = $ng->download($id, "$dir/upgrade.mp4");
    is($r->{status}, 200, '[upgrade] its output');
    probe_ok("$dir/upgrade.mp4", '[upgrade]');
    my $job2 = $ng->wait_job($id2, 60) // {};
    is($job2->{status}, 'done', '[upgrade] the second job too');
    $ng->assert_clean_log('[upgrade] no alert');

    # neither master is our child
    $ng->{pid} = undef;
    stop_detached($old);
    stop_detached($new);
}


# --- worker_shutdown_timeout: the job is interrupted -----------------------
# --- a download served by the old worker ends cleanly ----------------------
if (want('download')) {
    my $ng = VconvNginx->new(workers => 2)->start;
    my $r = $ng->post_file('/api/jobs?format=mp4&duration=2&wait=1&keep=1', $long,
                           output => "$dir/dl-src.mp4", max_time => 120);
    is($r->{status}, 200, '[download] a finished job');
    my ($id) = grep { /^[0-9a-f]{32}$/ } @{ $ng->store_entries };
    my $bytes = -s "$dir/dl-src.mp4";
    my $p = $ng->download($id // 'none', "$dir/dl.mp4", async => 1,
                          limit_rate => int($bytes / 4), max_time => 60);
    sleep 1;
    reload_now($ng);
    $r = $p->wait(60);
    is($r->{curl_exit}, 0, '[download] the download across the reload '
                           . 'ended cleanly')
        or diag($r->{curl_err});
    is(-s "$dir/dl.mp4", $bytes, '[download] ... whole');
    $ng->assert_clean_log('[download] no alert');
    $ng->stop;
}


# --- a job queued behind another when the worker exits: taken over ------
#
# One transcode thread: the second job waits in the old worker's thread
# pool queue.  The exiting worker offers it to the new workers (its
# options in a file, its record in the zone), one of them runs it, and
# the old worker leaves once its running job ends.
if (want('queued')) {
    my $ng = VconvNginx->new(workers => 1,
                             main => 'thread_pool one threads=1;',
                             http => 'vconv_thread_pool one;')->start;
    # the first runs all 20 s of the clip, so that it is still running at
    # the reload on an idle machine too; the second is short
    my @id;
    for my $q ('format=mp4', $SHORT) {
        my $r = $ng->post_file("/api/jobs?$q&height=720", $long,
                               name => 'q' . (@id + 1) . '.mov');
        push @id, $r->{json} ? $r->{json}{id} : 'none';
    }
    is(wait_running($ng, $id[0]), 'running', '[queued] the first job runs');
    is(($ng->get("/api/jobs/$id[1]")->{json} // {})->{status}, 'queued',
       '[queued] the second waits for the thread');

    # one worker: these streams are the exiting worker's
    my @sse = map { $ng->get("/api/jobs/$_/events", async => 1,
                             no_buffer => 1, max_time => 180) } @id;
    sleep 0.5;
    my @old = @{ $ng->worker_pids };
    reload_now($ng);

    my $job = $ng->wait_job($id[0], 180) // {};
    is($job->{status}, 'done', '[queued] job 1 done in the old worker');
    my $s = $sse[0]->wait(30);
    is($s->{curl_exit}, 0, '[queued] its event stream ended cleanly');
    like($s->{body}, qr/^event:\s?done$/m,
         '[queued] ... with the done event, from the exiting worker');
    ok(VconvNginx::poll(10, sub { !grep { alive($_) } @old }),
       '[queued] then the old worker exits');

    $s = $sse[1]->wait(30);
    is($s->{curl_exit}, 0, '[queued] the offered job\'s stream ended '
                           . 'cleanly (EventSource reconnects)');

    $job = $ng->wait_job($id[1], 180) // {};
    is($job->{status}, 'done', '[queued] job 2 done');
    my ($line) = grep { /vconv: job done.*\Q$id[1]\E/ }
                 split /\n/, $ng->error_log;
    my ($pid) = ($line // '') =~ /\[info\] (\d+)#/;
    ok($pid && !grep({ $_ == $pid } @old),
       '[queued] ... by a new worker') or diag($line);
    like($ng->error_log, qr/taken over from an exiting worker.*\Q$id[1]\E/,
         '[queued] the take-over is logged');
    is($job->{input} && $job->{input}{name}, 'q2.mov', '[queued] its name');
    my $r = $ng->download($id[1], "$dir/queued.mp4");
    my $p = VconvNginx::probe("$dir/queued.mp4");
    is($p && $p->{video} && $p->{video}{height}, 720,
       '[queued] its options came along (height=720)');
    ok(!-e $ng->store . "/$id[1]/input", '[queued] its input is gone');
    $ng->assert_clean_log('[queued] no alert');
    $ng->stop;
}


# --- an offered job no new worker takes comes back --------------------------
#
# The new configuration has no vconv at all: no new worker looks at the
# zone, and after a while the old worker runs the queued job itself.
if (want('reclaim')) {
    my $ng = VconvNginx->new(workers => 1,
                             main => 'thread_pool one threads=1;',
                             http => 'vconv_thread_pool one;')->start;
    my @id;
    for my $n (1, 2) {
        my $r = $ng->post_file("/api/jobs?$SHORT", $long);
        push @id, $r->{json} ? $r->{json}{id} : 'none';
    }
    is(wait_running($ng, $id[0]), 'running', '[reclaim] the first job runs');
    is(($ng->get("/api/jobs/$id[1]")->{json} // {})->{status}, 'queued',
       '[reclaim] the second waits for the thread');

    my $user = $> == 0 ? "user root root;\n" : '';
    $ng->{conf} = <<"EOF";
load_module %%MODULE%%;
${user}worker_processes 1;
error_log %%PREFIX%%/error.log info;
pid %%PREFIX%%/nginx.pid;
daemon off;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %%PREFIX%%/tmp/body;
    server { listen 127.0.0.1:%%PORT%%; location / { return 204; } }
}
EOF
    my @old = @{ $ng->worker_pids };
    reload_now($ng);
    ok(VconvNginx::poll(180, sub { !grep { alive($_) } @old }),
       '[reclaim] the old worker exits once both jobs ended');
    like($ng->error_log,
         qr/no new worker took the queued job, it runs here.*\Q$id[1]\E/,
         '[reclaim] the offered job came back to the old worker');
    for my $i (0, 1) {
        is(job_json_on_disk($ng, $id[$i])->{status}, 'done',
           '[reclaim] job ' . ($i + 1) . ' done (job.json)');
    }
    ok(!-e $ng->store . "/$id[1]/options", '[reclaim] no options file left');
    $ng->assert_clean_log('[reclaim] no alert');
    $ng->stop;
}


if (want('timeout')) {
    my $ng = VconvNginx->new(workers => 2,
                             main => 'worker_shutdown_timeout 1s;')->start;
    my $r = $ng->post_file('/api/jobs?format=mp4', $long);
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    is(wait_running($ng, $id), 'running', '[timeout] job running');
    my %old = map { $_ => 1 } @{ $ng->worker_pids };
    my $t0 = time;
    $ng->reload;
    my $job = $ng->wait_job($id, 60) // {};
    my $dt = time - $t0;
    is($job->{status}, 'failed', '[timeout] the job ends failed');
    is($job->{error} && $job->{error}{code}, 'interrupted',
       '[timeout] ... "interrupted"');
    like($job->{error} && $job->{error}{message} // '',
         qr/worker_shutdown_timeout/, '[timeout] ... says why');
    ok(VconvNginx::poll(10, sub { !grep { alive($_) } keys %old }),
       '[timeout] the old worker exits');
    cmp_ok($dt, '<', 10, sprintf '[timeout] within seconds (%.1f s)', $dt);
    ok(info_line($ng, $id, 'failed'), '[timeout] info line with the id');
    like($ng->error_log, qr/worker_shutdown_timeout.*job: \Q$id\E/,
         '[timeout] the stop is logged with the job id');
    $ng->stop;
}


# --- a raw upload slower than its conversion --------------------------------
if (want('slow')) {
    my $ng = VconvNginx->new(workers => 2)->start;
    my $size = -s $mkv;
    my $rate = int($size / 6);     # six seconds of upload

    for my $c (['format=jpg', 'mjpeg'], ['format=mp4&duration=1', 'h264']) {
        my ($q, $codec) = @$c;

        my $out = "$dir/slow-wait.out";
        my $r = $ng->post_file("/api/jobs?$q&wait=1", $mkv,
                               limit_rate => $rate, max_time => 60,
                               output => $out);
        is($r->{status}, 200, "[slow $q, wait=1] 200")
            or diag(VconvNginx::_slurp($out));
        my $p = VconvNginx::probe($out);
        is($p && $p->{video} && $p->{video}{codec_name}, $codec,
           "[slow $q, wait=1] the output is $codec");
        if ($q =~ /duration=1/) {
            cmp_ok($p && $p->{duration} // 0, '<', 1.5,
                   "[slow $q, wait=1] about one second long");
        }

        $r = $ng->post_file("/api/jobs?$q", $mkv, limit_rate => $rate,
                            max_time => 60);
        is($r->{status}, 202, "[slow $q] 202");
        my $id = $r->{json} ? $r->{json}{id} : 'none';
        is($r->{json} && $r->{json}{status}, 'done',
           "[slow $q] done by the time the upload ended");
        my $job = $ng->wait_job($id, 30) // {};
        is($job->{status}, 'done', "[slow $q] the job is done");
        ok(info_line($ng, $id, 'done'), "[slow $q] info line with the id");
    }
    $ng->assert_clean_log('[slow] no alert');
    $ng->stop;
}

done_testing;
