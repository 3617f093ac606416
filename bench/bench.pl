#!/usr/bin/perl
# vconv benchmark: see bench/run.sh for the knobs.  Perl core modules only
# plus the test harness t/lib/VconvNginx.pm (which starts nginx).
#
# Every measurement is taken side by side in one run: the ffmpeg CLI and
# the module alternate, each several times, and the median is reported.
# Ratios are reported, never asserted.  Every output is checked with
# ffprobe (codec, size, duration) so that a broken conversion cannot look
# fast; a failed check is shown in the table.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";

use Cwd ();
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use MIME::Base64 ();
use JSON::PP;
use POSIX qw(:sys_wait_h strftime);
use Time::HiRes qw(time sleep);

use VconvNginx;

$| = 1;

my $ROOT = Cwd::abs_path("$FindBin::Bin/..");
my $RUNS = $ENV{BENCH_RUNS} // 3;
my $BIG_MB = $ENV{BENCH_BIG_MB} // 2048;
my $WRK_S = $ENV{BENCH_WRK_SECONDS} // 10;
my $PRIO = 10;      # the module's default vconv_priority
my $OUT = $ENV{BENCH_OUT} // "$ROOT/bench/RESULTS.md";
my %ONLY = map { $_ => 1 } split /,/, ($ENV{BENCH_ONLY}
                                       // 'conv,stream,big,static,threads,'
                                          . 'burst,headline,static4,'
                                          . 'listeners,link,tus,outputs');
my $JSON = JSON::PP->new->canonical;
my $T0 = time;

my $W = tempdir('vconv-bench-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# the module is copied: a rebuild during the bench cannot change it
my $src_mod = $ENV{VCONV_MODULE} || "$ROOT/build/ngx_http_vconv_module.so";
copy($src_mod, "$W/module.so") or die "copy $src_mod: $!";
$ENV{VCONV_MODULE} = "$W/module.so";
# and its sandbox helper next to it, where the module looks for it
my $src_helper = dirname($src_mod) . '/vconv-sandbox';
copy($src_helper, "$W/vconv-sandbox") && chmod(0755, "$W/vconv-sandbox")
    or die "copy $src_helper: $!";

my %KIDS;       # pids we started and must not leave behind

END {
    local ($?, $!);
    kill 'KILL', keys %KIDS if %KIDS;
    waitpid($_, 0) for keys %KIDS;
}

sub logmsg { printf STDERR "[bench %6.1fs] %s\n", time - $T0, join '', @_ }


# ------------------------------------------------------------ processes

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    my $d = <$fh>;
    return $d // '';
}

sub proc_status {
    my ($pid) = @_;
    my $s = slurp("/proc/$pid/status");
    my %v;
    $v{$1} = $2 for $s =~ /^(VmRSS|VmHWM):\s+(\d+) kB/mg;
    return \%v;
}

# CPU seconds (user + system) a process has used so far, all its threads
my $HZ = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
sub proc_cpu {
    my ($pid) = @_;
    my $st = slurp("/proc/$pid/stat");
    $st =~ s/^.*\)\s+//s or return undef;
    my @f = split ' ', $st;
    return ($f[11] + $f[12]) / $HZ;
}

# the worker and, in process isolation, its sandbox helper and the
# helper's job children: the work of a job, wherever it runs
sub tree_pids {
    my ($pid) = @_;
    my @h = @{ VconvNginx::_children($pid) };
    return ($pid, @h, map { @{ VconvNginx::_children($_) } } @h);
}

sub tree_rss {
    my ($pid) = @_;
    my $kb;
    for my $p (tree_pids($pid)) {
        my $v = proc_status($p)->{VmRSS};
        $kb += $v if defined $v;
    }
    return $kb;
}

# CPU seconds of the worker, its sandbox helper, the helper's reaped
# children (cutime + cstime) and its live ones (the spare).  A job's
# child is reaped after the job has answered, so this is read with the
# sandbox at rest (sandbox_rest): the difference over a job is then the
# job's CPU wherever it ran, plus the warm-up of the spare that replaces
# the one it took.
sub tree_cpu {
    my ($pid) = @_;
    my $t = proc_cpu($pid) // return undef;
    for my $h (@{ VconvNginx::_children($pid) }) {
        my $st = slurp("/proc/$h/stat");
        $st =~ s/^.*\)\s+//s or next;
        my @f = split ' ', $st;
        $t += ($f[11] + $f[12] + $f[13] + $f[14]) / $HZ;
        for my $k (@{ VconvNginx::_children($h) }) {
            $t += proc_cpu($k) // 0;
        }
    }
    return $t;
}

# waits (10 s at most) until no job's child is left under the worker's
# sandbox helper and its spare is ready: nothing is reaped meanwhile, so
# tree_cpu neither misses nor counts twice a child that ends; 1 if so
sub sandbox_rest {
    my ($pid) = @_;
    return VconvNginx::poll(10, sub {
        for my $h (@{ VconvNginx::_children($pid) }) {
            for my $k (@{ VconvNginx::_children($h) }) {
                return 0 if slurp("/proc/$k/comm") !~ /^vconv-spare$/m;
            }
        }
        return 1;
    }, 0.02) ? 1 : 0;
}

# run @cmd with a deadline; sample the RSS of $o{watch} (pid) meanwhile.
# returns { rc, wall, out (stdout), err (stderr), peak_kb }
sub run {
    my ($cmd, %o) = @_;
    my $tag = "$W/run-$$-" . int(rand(1e9));
    my $t = time;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$tag.out";
        open STDERR, '>', "$tag.err";
        exec { $cmd->[0] } @$cmd or POSIX::_exit(127);
    }
    $KIDS{$pid} = 1;
    my $deadline = $t + ($o{timeout} // 600);
    my $peak = 0;
    my $rc;
    while (1) {
        if ($o{watch}) {
            my $v = tree_rss($o{watch});
            $peak = $v if ($v // 0) > $peak;
        }
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) { $rc = $? >> 8; last }
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $rc = 124;
            last;
        }
        $o{tick}->() if $o{tick};
        sleep 0.02;
    }
    delete $KIDS{$pid};
    my %r = (rc => $rc, wall => time - $t, out => slurp("$tag.out"),
             err => slurp("$tag.err"), peak_kb => $peak);
    unlink "$tag.out", "$tag.err";
    return \%r;
}

# start @cmd in the background; returns the pid (wait with bg_wait)
sub bg {
    my ($cmd) = @_;
    my $tag = "$W/bg-$$-" . int(rand(1e9));
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$tag.out";
        open STDERR, '>', "$tag.err";
        exec { $cmd->[0] } @$cmd or POSIX::_exit(127);
    }
    $KIDS{$pid} = { tag => $tag, t0 => time };
    return $pid;
}

sub bg_wait {
    my ($pid, $timeout) = @_;
    my $k = $KIDS{$pid} or return undef;
    my $deadline = time + ($timeout // 600);
    my $rc;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) { $rc = $? >> 8; last }
        if (time > $deadline) { kill 'KILL', $pid; waitpid($pid, 0);
                                $rc = 124; last }
        sleep 0.02;
    }
    delete $KIDS{$pid};
    my %r = (rc => $rc, wall => time - $k->{t0}, out => slurp("$k->{tag}.out"),
             err => slurp("$k->{tag}.err"));
    unlink "$k->{tag}.out", "$k->{tag}.err";
    return \%r;
}



# ------------------------------------------------------------ statistics

sub median {
    my @v = sort { $a <=> $b } grep { defined } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub f2 { defined $_[0] ? sprintf('%.2f', $_[0]) : 'n/a' }
sub f1 { defined $_[0] ? sprintf('%.1f', $_[0]) : 'n/a' }
sub mb { defined $_[0] ? sprintf('%.1f', $_[0] / 1024) : 'n/a' }   # kB -> MB
sub ratio { defined $_[0] && defined $_[1] && $_[1] > 0
                ? sprintf('%.2f', $_[0] / $_[1]) : 'n/a' }
sub samples { join ' ', map { f2($_) } @_ }


# ------------------------------------------------------------ ffmpeg / ffprobe

sub ffmpeg {
    my (@args) = @_;
    my $r = run(['ffmpeg', '-nostdin', '-hide_banner', '-loglevel', 'error',
                 '-y', @args], timeout => 900);
    die "ffmpeg @args failed:\n$r->{err}" if $r->{rc};
    return $r;
}

# the CLI timed, with /usr/bin/time -v for its max RSS
sub cli {
    my (@args) = @_;
    my $tf = "$W/time.txt";
    # the same nice value as the module's transcode threads (vconv_priority)
    my $r = run(['nice', '-n', $PRIO, '/usr/bin/time', '-v', '-o', $tf,
                 'ffmpeg', '-nostdin',
                 '-hide_banner', '-loglevel', 'error', '-y', @args],
                timeout => 900);
    my $tv = slurp($tf);
    $r->{maxrss_kb} = $tv =~ /Maximum resident set size \(kbytes\): (\d+)/
                      ? $1 : undef;
    $r->{cpu} = $tv =~ /User time \(seconds\): ([\d.]+)/ ? $1 : undef;
    $r->{cpu} += $1 if defined $r->{cpu}
                       && $tv =~ /System time \(seconds\): ([\d.]+)/;
    $r->{ok} = $r->{rc} == 0;
    return $r;
}

sub probe {
    my ($file) = @_;
    return undef unless -s $file;
    my $r = run(['ffprobe', '-v', 'error', '-show_entries',
                 'stream=codec_type,codec_name,width,height:format=format_name,duration',
                 '-of', 'json', $file], timeout => 60);
    return undef if $r->{rc};
    my $j = eval { decode_json($r->{out}) } or return undef;
    for my $s (@{ $j->{streams} // [] }) {
        $j->{ $s->{codec_type} } //= $s;
    }
    return $j;
}

# $want: { v => codec, w =>, h =>, a => codec or '' (no audio), dur => s }
sub check {
    my ($file, $want) = @_;
    my $p = probe($file) or return 'no/invalid output';
    my @bad;
    if ($want->{v}) {
        my $v = $p->{video};
        if (!$v) { push @bad, 'no video' }
        else {
            push @bad, "vcodec $v->{codec_name}" if $v->{codec_name} ne $want->{v};
            push @bad, "size $v->{width}x$v->{height}"
                if "$v->{width}x$v->{height}" ne "$want->{w}x$want->{h}";
        }
    } elsif ($p->{video}) {
        push @bad, 'unexpected video';
    }
    if ($want->{a}) {
        my $a = $p->{audio};
        push @bad, $a ? ($a->{codec_name} ne $want->{a} ? "acodec $a->{codec_name}" : ())
                      : 'no audio';
    } elsif (defined $want->{a} && $p->{audio}) {
        push @bad, 'unexpected audio';
    }
    my $d = $p->{format}{duration} // 0;
    push @bad, sprintf('duration %.2f', $d)
        if $want->{dur} && abs($d - $want->{dur}) > 0.6;
    return @bad ? join(', ', @bad) : 'ok';
}


# ------------------------------------------------------------ nginx

my $STATIC = 'static.html';

sub nginx {
    my (%o) = @_;
    my $threads = $o{threads} // 0;
    my $prio = $o{priority} // 10;
    my $ng = VconvNginx->new(
        workers => 1,
        main => $o{main} // '',
        http => "    vconv_codec_threads $threads;\n"
              . "    vconv_priority $prio;\n"
              . "    vconv_max_queue 64;\n"
              . ($o{http} // ''),
        # the big-upload test needs more than the default location's 1g
        server => "        location = /api/big {\n"
                . "            vconv_upload;\n"
                . "            client_max_body_size 8g;\n"
                . "        }\n"
                . ($o{server} // ''),
    );
    # a small static page for the latency test (~2 kB)
    open my $fh, '>', "$ng->{html}/$STATIC" or die $!;
    print $fh "<!doctype html><title>static</title>\n", ('x' x 64 . "\n") x 30;
    close $fh;
    $ng->start;
    my $w = $ng->worker_pids;
    die "expected one worker, got @$w\n" unless @$w == 1;
    $ng->{wpid} = $w->[0];
    $ng->{mpid} = $ng->master_pid;
    # touch the worker once, then take its idle RSS
    run(['curl', '-sS', '-o', '/dev/null', $ng->url("/$STATIC")], timeout => 10);
    sleep 0.2;
    $ng->{idle_kb} = proc_status($ng->{wpid})->{VmRSS};
    return $ng;
}

# stop, and make sure nothing of this nginx is left running
sub ng_stop {
    my ($ng) = @_;
    $ng->stop;
    for my $p (grep { $_ } $ng->{wpid}, $ng->{mpid}) {
        next unless slurp("/proc/$p/cmdline") =~ /^nginx: /;
        kill 'KILL', $p;
        logmsg("nginx pid $p outlived stop; killed");
    }
}

sub curl_base {
    return ('curl', '-sS', '--max-time', 900, '-H', 'Expect:',
            '-w', '%{http_code} %{time_total} %{size_upload}');
}

# a raw-body upload, streamed from the file (curl -T, method POST)
sub upload_cmd {
    my ($ng, $path, $file, %o) = @_;
    my @c = (curl_base(), '-X', 'POST', '-T', $file,
             '-H', 'Content-Type: application/octet-stream',
             '-H', 'X-File-Name: ' . ($o{name} // 'input'),
             '-o', $o{output} // '/dev/null');
    push @c, '--limit-rate', $o{rate} if $o{rate};
    push @c, $ng->url($path);
    return \@c;
}

sub multipart_cmd {
    my ($ng, $path, $file, %o) = @_;
    my @c = (curl_base(), '-F', "file=\@$file;filename=input.mkv",
             '-o', $o{output} // '/dev/null');
    push @c, '--limit-rate', $o{rate} if $o{rate};
    push @c, $ng->url($path);
    return \@c;
}

sub curl_code { my ($r) = @_; $r->{out} =~ /^(\d{3})/ ? $1 + 0 : 0 }

# one module job end to end: upload + conversion + download (wait=1),
# with the worker's RSS sampled; returns the run() result plus rss fields
sub module_job {
    my ($ng, $cmd) = @_;
    my $idle = proc_status($ng->{wpid})->{VmRSS};
    sandbox_rest($ng->{wpid});
    my $cpu0 = tree_cpu($ng->{wpid});
    my $r = run($cmd, timeout => 900, watch => $ng->{wpid});
    my $rest = sandbox_rest($ng->{wpid});
    my $cpu1 = $rest ? tree_cpu($ng->{wpid}) : undef;
    $r->{cpu} = defined $cpu0 && defined $cpu1 ? $cpu1 - $cpu0 : undef;
    my $st = proc_status($ng->{wpid});
    $r->{code} = curl_code($r);
    $r->{ok} = $r->{rc} == 0 && $r->{code} == 200;
    $r->{idle_kb} = $idle;
    $r->{hwm_kb} = $st->{VmHWM};
    $r->{after_kb} = $st->{VmRSS};
    # the worker is fresh (one job per nginx), so its high-water mark is
    # this job's peak; the sampled peak is a cross-check
    my $peak = ($st->{VmHWM} // 0) > $r->{peak_kb} ? $st->{VmHWM} : $r->{peak_kb};
    $r->{delta_kb} = $peak - $idle;
    return $r;
}

sub job_get {
    my ($ng, $id) = @_;
    my $r = run(['curl', '-sS', '--max-time', 10, $ng->url("/api/jobs/$id")],
                timeout => 15);
    return eval { decode_json($r->{out}) } // {};
}

sub job_delete {
    my ($ng, $id) = @_;
    run(['curl', '-sS', '-o', '/dev/null', '--max-time', 10, '-X', 'DELETE',
         $ng->url("/api/jobs/$id")], timeout => 15);
}

# A raw-body upload paced to take $secs s, wait=1: seconds from the last
# body byte written to the answer's headers, the status, the body's bytes
sub last_byte_job {
    my ($ng, $file, $q, $secs) = @_;
    my $size = -s $file;
    open my $fh, '<:raw', $file or die "$file: $!";
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $ng->port, Proto => 'tcp')
        or die "connect: $!";
    $sock->autoflush(1);
    print $sock "POST /api/jobs?$q&wait=1 HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/octet-stream\r\nX-File-Name: in.mkv"
        . "\r\nContent-Length: $size\r\nConnection: close\r\n\r\n";
    my ($t0, $sent) = (time, 0);
    while (my $n = read($fh, my $buf, 64 * 1024)) {
        my $off = 0;
        while ($off < $n) {
            my $w = syswrite($sock, $buf, $n - $off, $off);
            die "send: $!\n" unless defined $w;
            $off += $w;
        }
        $sent += $n;
        my $due = $t0 + $secs * $sent / $size;
        sleep($due - time) if $due > time;
    }
    my $t_last = time;
    my $resp = '';
    while ($resp !~ /\r\n\r\n/) {
        my $n = sysread($sock, my $b, 65536);
        last unless $n;
        $resp .= $b;
    }
    my $t_file = time;
    while (1) {
        my $n = sysread($sock, my $b, 1 << 20);
        last unless $n;
        $resp .= $b;
    }
    close $sock;
    my ($st) = $resp =~ m{^HTTP/1\.1 (\d{3})};
    my $body = $resp =~ /\r\n\r\n(.*)\z/s ? length $1 : 0;
    return ($t_file - $t_last, $st // 0, $body);
}

# a 202 upload's job id from the answer body in $file
sub job_id_from {
    my ($file) = @_;
    my $j = eval { decode_json(slurp($file)) } // {};
    return $j->{id};
}


# ------------------------------------------------------------ machine

my $cpu = (slurp('/proc/cpuinfo') =~ /^model name\s*:\s*(.*)$/m)[0] // '?';
my $cores = () = slurp('/proc/cpuinfo') =~ /^processor\s*:/mg;
my $ffver = (`ffmpeg -version 2>/dev/null` =~ /^ffmpeg version (\S+)/)[0] // '?';
my $ngver = (`/usr/sbin/nginx -v 2>&1` =~ m{nginx/(\S+)})[0] // '?';
my $load0 = (split ' ', slurp('/proc/loadavg'))[0];
my $date = strftime('%Y-%m-%d %H:%M %Z', localtime);

logmsg("$cores cores, $cpu; load $load0; work dir $W");


# ------------------------------------------------------------ inputs

my $SECS = 10;
my $IN_MP4 = "$W/in.mp4";
my $IN_MKV = "$W/in.mkv";
my $IN20 = "$W/in20.mkv";

logmsg('making inputs (1080p30 H.264/AAC, 10 s)');
ffmpeg('-f', 'lavfi', '-i', "testsrc2=size=1920x1080:rate=30:duration=$SECS",
       '-f', 'lavfi', '-i', "sine=frequency=440:sample_rate=48000:duration=$SECS",
       '-map', '0:v', '-map', '1:a',
       '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-g', '60',
       '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', '-ac', '2',
       '-movflags', '+faststart', $IN_MP4);
ffmpeg('-i', $IN_MP4, '-map', '0', '-c', 'copy', $IN_MKV);
# 20 s, for the load behind the latency test
ffmpeg('-stream_loop', 1, '-i', $IN_MKV, '-map', '0', '-c', 'copy', $IN20);

my %checks_v720 = (v => 'h264', w => 1280, h => 720, a => 'aac', dur => $SECS);

my @ROWS = (
    { name => 'remux MKV→MP4 (copy)', in => $IN_MKV, ext => 'mp4',
      q => 'format=mp4&vcodec=copy&acodec=copy',
      cli => ['-i', $IN_MKV, '-map', '0', '-c', 'copy',
              '-movflags', '+faststart'],
      want => { v => 'h264', w => 1920, h => 1080, a => 'aac', dur => $SECS },
      transcode => 0 },
    { name => '1080p H.264 → 720p MP4', in => $IN_MP4, ext => 'mp4',
      q => 'format=mp4&height=720',
      cli => ['-i', $IN_MP4, '-map', '0:v:0', '-map', '0:a:0',
              '-vf', 'scale=1280:720,format=yuv420p',
              '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23',
              '-c:a', 'aac', '-b:a', '128k', '-movflags', '+faststart'],
      want => \%checks_v720, transcode => 1 },
    { name => '1080p → WebM VP9', in => $IN_MP4, ext => 'webm',
      q => 'format=webm',
      cli => ['-i', $IN_MP4, '-map', '0:v:0', '-map', '0:a:0',
              '-vf', 'format=yuv420p',
              '-c:v', 'libvpx-vp9', '-crf', '32', '-b:v', '0',
              '-deadline', 'realtime', '-cpu-used', '8', '-row-mt', '1',
              '-c:a', 'libopus', '-b:a', '96k'],
      want => { v => 'vp9', w => 1920, h => 1080, a => 'opus', dur => $SECS },
      transcode => 1 },
    { name => '1080p → GIF (12 fps, 480 px)', in => $IN_MP4, ext => 'gif',
      q => 'format=gif',
      cli => ['-i', $IN_MP4, '-an', '-filter_complex',
              '[0:v:0]fps=12,scale=480:270,split[a][b];'
              . '[a]palettegen=stats_mode=diff[p];'
              . '[b][p]paletteuse=dither=bayer:bayer_scale=3'
              . ':diff_mode=rectangle', '-loop', '0'],
      want => { v => 'gif', w => 480, h => 270, a => '', dur => 0 },
      transcode => 1 },
    { name => '1080p → MP3 192k', in => $IN_MP4, ext => 'mp3',
      q => 'format=mp3',
      cli => ['-i', $IN_MP4, '-vn', '-c:a', 'libmp3lame', '-b:a', '192k'],
      want => { v => '', a => 'mp3', dur => $SECS },
      transcode => 1 },
);

my @md;     # the report
sub md { push @md, @_ }

md("# vconv benchmark results", '',
   "- date: $date",
   "- machine: $cores cores, $cpu (from /proc/cpuinfo); load average at start $load0",
   "- ffmpeg $ffver, nginx $ngver (Debian), one worker (`worker_processes 1`),"
   . " the module's default thread pool (one thread per CPU)",
   "- $RUNS runs per measurement, CLI and module alternating; medians; every"
   . " output checked with ffprobe (codecs, size, duration)",
   '');

my $t720_cli;   # median CLI time of the 720p row, for the streaming test


# ------------------------------------------------------------ 1. conversions

my (%res, @md_rss);
my $trivial_rss;

if ($ONLY{conv}) {
    # what an ffmpeg process costs before any work: libraries and tables
    my $t = cli('-f', 'lavfi', '-i', 'nullsrc=s=16x16:d=0.1', '-f', 'null', '-');
    $trivial_rss = $t->{maxrss_kb};

    for my $run (1 .. $RUNS) {
        for my $row (@ROWS) {
            my $k = $row->{name};
            my $cout = "$W/cli.$row->{ext}";
            my $c = cli(@{ $row->{cli} }, $cout);
            my $cchk = $c->{ok} ? check($cout, $row->{want})
                                : "ffmpeg failed: $c->{err}";
            unlink $cout;

            my $ng = nginx();
            my $mout = "$W/mod.$row->{ext}";
            my $m = module_job($ng, upload_cmd($ng, "/api/jobs?$row->{q}&wait=1",
                                               $row->{in}, output => $mout,
                                               name => "in.$row->{ext}"));
            my $mchk = $m->{ok} ? check($mout, $row->{want})
                                : "HTTP $m->{code} (curl $m->{rc}): "
                                  . substr(slurp($mout), 0, 200);
            my $msize = -s $mout;
            unlink $mout;
            ng_stop($ng);

            push @{ $res{$k}{cli} }, $c->{ok} && $cchk eq 'ok' ? $c->{wall} : undef;
            push @{ $res{$k}{mod} }, $m->{ok} && $mchk eq 'ok' ? $m->{wall} : undef;
            push @{ $res{$k}{cli_cpu} }, $c->{cpu};
            push @{ $res{$k}{mod_cpu} }, $m->{cpu};
            push @{ $res{$k}{pair} }, $c->{ok} && $m->{ok} && $c->{wall} > 0
                                      ? $m->{wall} / $c->{wall} : undef;
            push @{ $res{$k}{cli_rss} }, $c->{maxrss_kb};
            push @{ $res{$k}{mod_drss} }, $m->{delta_kb};
            push @{ $res{$k}{mod_idle} }, $m->{idle_kb};
            push @{ $res{$k}{cchk} }, $cchk;
            push @{ $res{$k}{mchk} }, $mchk;
            $res{$k}{msize} = $msize;
            logmsg(sprintf('run %d %-30s cli %6.2fs cpu %5.2fs (%s)  module %6.2fs'
                           . ' cpu %5.2fs (%s)', $run, $k, $c->{wall},
                           $c->{cpu} // -1, $cchk, $m->{wall}, $m->{cpu} // -1,
                           $mchk));
        }
    }

    md('## 1. ffmpeg CLI on a local file vs the module end to end', '',
       'Module time = curl upload over loopback (raw body, `wait=1`) +'
       . ' conversion + download of the result, one job on an idle server.'
       . ' CLI time = `ffmpeg -i local-file ... out` with the same codecs and'
       . ' settings as src/vconv_options.c, src/vconv_encode.c,'
       . " src/vconv_filter.c, run with `nice -n $PRIO` like the module's"
       . " transcode threads (`vconv_priority $PRIO`, the default), so that"
       . ' other load on the machine weighs on both alike.'
       . ' Target: ratio ≤ 1.05 on transcode rows. "paired" is the median of'
       . ' the per-run ratios (CLI and module run back to back, so slow drifts'
       . ' of the machine\'s load cancel out); CPU is user + system seconds'
       . ' (CLI: `/usr/bin/time`; module: from /proc, the nginx worker\'s'
       . ' utime + stime, all its threads, plus in process isolation its'
       . ' sandbox helper\'s, the helper\'s reaped children\'s (cutime +'
       . ' cstime) and its live spare\'s, read once the job\'s child is'
       . ' reaped and the next spare is ready: the job\'s CPU plus one'
       . ' spare\'s warm-up), which other load on the machine'
       . ' barely moves.', '',
       '| conversion | ffmpeg CLI (s) | module (s) | module / CLI | paired | CPU CLI / module (s) | CPU ratio | check | samples CLI / module (s) |',
       '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |');
    for my $row (@ROWS) {
        my $r = $res{ $row->{name} };
        my $cm = median(@{ $r->{cli} });
        my $mm = median(@{ $r->{mod} });
        $t720_cli = $cm if $row->{q} eq 'format=mp4&height=720';
        my %bad;
        $bad{$_}++ for grep { $_ ne 'ok' } @{ $r->{cchk} }, @{ $r->{mchk} };
        my $chk = %bad ? join('; ', map { "$_ ×$bad{$_}" } sort keys %bad) : 'ok';
        my $ratio = ratio($mm, $cm);
        $ratio .= $row->{transcode} ? '' : ' (remux: no target)';
        my $cc = median(@{ $r->{cli_cpu} });
        my $mc = median(@{ $r->{mod_cpu} });
        md(sprintf('| %s | %s | %s | %s | %s | %s / %s | %s | %s | %s / %s |',
                   $row->{name}, f2($cm), f2($mm), $ratio,
                   f2(median(@{ $r->{pair} })), f2($cc), f2($mc), ratio($mc, $cc),
                   $chk, samples(@{ $r->{cli} }), samples(@{ $r->{mod} })));
    }
    md('');

    push @md_rss, ('## 3. Peak memory per job', '',
       '`ffmpeg` max RSS from `/usr/bin/time -v`; the same for a trivial'
       . " ffmpeg run (`nullsrc` → null, ${\ mb($trivial_rss)} MB) is the cost"
       . ' of its libraries before any work. Module: a fresh nginx'
       . ' (`worker_processes 1`) per job; increase of the worker\'s peak RSS'
       . ' (VmHWM, cross-checked by sampling VmRSS every 20 ms) over its idle'
       . ' RSS. Medians over the runs.', '',
       '| conversion | ffmpeg max RSS (MB) | ffmpeg minus trivial ffmpeg (MB) | worker idle RSS (MB) | worker peak increase (MB) | increase / (ffmpeg − trivial) |',
       '| --- | ---: | ---: | ---: | ---: | ---: |');
    for my $row (@ROWS) {
        my $r = $res{ $row->{name} };
        my $c = median(@{ $r->{cli_rss} });
        my $d = median(@{ $r->{mod_drss} });
        my $net = defined $c && defined $trivial_rss ? $c - $trivial_rss : undef;
        push @md_rss, (sprintf('| %s | %s | %s | %s | %s | %s |', $row->{name}, mb($c),
                   mb($net), mb(median(@{ $r->{mod_idle} })), mb($d),
                   ratio($d, $net)));
    }
    push @md_rss, '';
}


# ------------------------------------------------------------ 2. streaming

if ($ONLY{stream}) {
    my $size = -s $IN_MKV;
    unless ($t720_cli) {
        my $c = cli('-i', $IN_MKV, '-vf', 'scale=1280:720,format=yuv420p',
                    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23',
                    '-c:a', 'aac', '-b:a', '128k', '-movflags', '+faststart',
                    "$W/cli.mp4");
        $t720_cli = $c->{wall};
        unlink "$W/cli.mp4";
    }
    # the upload takes about as long as the transcode
    my $rate = int($size / $t720_cli);
    my $up_s = $size / $rate;
    my (@s, @m, @chk, @pair);
    for my $run (1 .. $RUNS) {
        for my $mode ('stream', 'multipart') {
            my $ng = nginx();
            my $out = "$W/stream.mp4";
            my $path = '/api/jobs?format=mp4&height=720&wait=1';
            my $cmd = $mode eq 'stream'
                ? upload_cmd($ng, $path, $IN_MKV, rate => $rate, output => $out,
                             name => 'in.mkv')
                : multipart_cmd($ng, $path, $IN_MKV, rate => $rate, output => $out);
            my $r = module_job($ng, $cmd);
            my $chk = $r->{ok} ? check($out, \%checks_v720)
                               : "HTTP $r->{code} (curl $r->{rc})";
            unlink $out;
            ng_stop($ng);
            push @chk, "$mode: $chk" if $chk ne 'ok';
            push @{ $mode eq 'stream' ? \@s : \@m }, $chk eq 'ok' ? $r->{wall} : undef;
            push @pair, $s[-1] / $m[-1]
                if $mode eq 'multipart' && $s[-1] && $m[-1];
            logmsg(sprintf('run %d streaming %-9s %6.2fs (%s)', $run, $mode,
                           $r->{wall}, $chk));
        }
    }
    my $sm = median(@s);
    my $mm = median(@m);
    my $seq = $up_s + $t720_cli;
    md('## 2. Streaming conversion of a throttled upload', '',
       sprintf('1080p MKV (%.1f MB) → 720p MP4, upload throttled with'
               . ' `curl --limit-rate %d` (%.1f s, about the CLI transcode time'
               . ' %.2f s). Streaming = raw body, the transcode starts with the'
               . ' first bytes. Upload-first = the same throttled upload as'
               . ' multipart (the module starts at the end of the body).'
               . ' Target: ratio ≤ 0.65.', $size / 1e6, $rate, $up_s, $t720_cli),
       '',
       '| mode | time (s) | samples (s) |',
       '| --- | ---: | --- |',
       sprintf('| streaming (raw body) | %s | %s |', f2($sm), samples(@s)),
       sprintf('| upload first (multipart) | %s | %s |', f2($mm), samples(@m)),
       sprintf('| upload time + CLI time (computed) | %s | |', f2($seq)),
       '',
       sprintf('Ratio streaming / upload-first: **%s** (median of the per-run'
               . ' ratios: %s; vs upload + CLI: %s).%s',
               ratio($sm, $mm), f2(median(@pair)), ratio($sm, $seq),
               @chk ? ' Failed checks: ' . join('; ', @chk) : ''),
       '');
}


md(@md_rss);


# ------------------------------------------------------------ 4. big upload

if ($ONLY{big} && $BIG_MB > 0) {
    my $big = "$W/big.ts";
    my $loops = int($BIG_MB * 1048576 / (-s $IN_MKV)) + 1;
    logmsg("making a ${BIG_MB} MB MPEG-TS ($loops loops of the clip, -c copy)");
    ffmpeg('-stream_loop', $loops - 1, '-i', $IN_MKV, '-map', '0', '-c', 'copy',
           '-fs', $BIG_MB * 1048576, '-f', 'mpegts', $big);
    my $bytes = -s $big;
    my $ng = nginx();
    my $idle = $ng->{idle_kb};
    my $resp = "$W/big.json";
    my $t = time;
    my $up = run(upload_cmd($ng, '/api/big?format=mkv&vcodec=copy&acodec=copy',
                            $big, output => $resp, name => 'big.ts'),
                 timeout => 900, watch => $ng->{wpid});
    my $up_s = time - $t;
    my $id = job_id_from($resp);
    my $peak = $up->{peak_kb};
    my $job = {};
    if ($id) {
        my $deadline = time + 900;
        while (time < $deadline) {
            my $v = proc_status($ng->{wpid});
            $peak = $v->{VmRSS} if ($v->{VmRSS} // 0) > $peak;
            $job = job_get($ng, $id);
            last if ($job->{status} // '') =~ /^(done|failed|canceled)$/;
            sleep 0.2;
        }
    }
    my $all_s = time - $t;
    my $hwm = proc_status($ng->{wpid})->{VmHWM} // 0;
    $peak = $hwm if $hwm > $peak;
    my $outb = $job->{output}{bytes} // 0;
    my $status = $job->{status} // "no job (HTTP " . curl_code($up) . ")";
    job_delete($ng, $id) if $id;
    ng_stop($ng);
    unlink $big;
    logmsg(sprintf('big upload %.0f MB: %s in %.1fs, worker +%.1f MB',
                   $bytes / 1048576, $status, $all_s, ($peak - $idle) / 1024));
    md('## 4. Big upload', '',
       sprintf('A %.0f MB MPEG-TS (the clip looped with `-c copy`) uploaded'
               . ' raw and unthrottled over loopback, remuxed to MKV'
               . ' (`vcodec=copy&acodec=copy`) while it uploads.'
               . ' Target: the worker\'s RSS grows by less than 64 MB.',
               $bytes / 1048576), '',
       '| input (MB) | upload (s) | upload + remux (s) | job | output (MB) | worker idle RSS (MB) | worker peak RSS (MB) | growth (MB) |',
       '| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
       sprintf('| %.0f | %.1f | %.1f | %s | %.0f | %s | %s | **%s** |',
               $bytes / 1048576, $up_s, $all_s, $status, $outb / 1048576,
               mb($idle), mb($peak), mb($peak - $idle)),
       '');
}


# ------------------------------------------------------------ 5. static latency

sub wrk {
    my ($ng) = @_;
    my $r = run(['wrk', '-t1', '-c4', "-d${WRK_S}s", '--latency',
                 $ng->url("/$STATIC")], timeout => $WRK_S + 30);
    my %v;
    ($v{rps}) = $r->{out} =~ /Requests\/sec:\s*([\d.]+)/;
    for my $p (50, 99) {
        my ($n, $u) = $r->{out} =~ /^\s*$p(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$/m;
        $v{"p$p"} = defined $n ? $n * { us => 0.001, ms => 1, s => 1000 }->{$u}
                               : undef;
    }
    ($v{errors}) = $r->{out} =~ /Non-2xx or 3xx responses:\s*(\d+)/;
    ($v{sockerr}) = $r->{out} =~ /(Socket errors:[^\n]*)/;
    return \%v;
}

if ($ONLY{static}) {
    my @rows;
    for my $prio (10, 0) {
        my $ng = nginx(priority => $prio);
        my (%idle, %busy, @notes);
        for my $run (1 .. $RUNS) {
            my $i = wrk($ng);
            push @{ $idle{$_} }, $i->{$_} for qw(rps p50 p99);
            # two 1080p -> 720p transcodes of a 20 s clip
            my @ids;
            for my $n (1, 2) {
                my $resp = "$W/load$n.json";
                run(upload_cmd($ng, '/api/jobs?format=mp4&height=720', $IN20,
                               output => $resp, name => 'in20.mkv'),
                    timeout => 60);
                push @ids, job_id_from($resp);
            }
            sleep 0.5;
            my $b = wrk($ng);
            push @{ $busy{$_} }, $b->{$_} for qw(rps p50 p99);
            my @st = map { $_ ? (job_get($ng, $_)->{status} // '?') : 'no job' } @ids;
            push @notes, join('/', @st);
            push @notes, "non-2xx $b->{errors}" if $b->{errors};
            push @notes, $b->{sockerr} if $b->{sockerr};
            job_delete($ng, $_) for grep { $_ } @ids;
            sleep 1;
            logmsg(sprintf('run %d static prio %d: idle p50 %s p99 %s ms;'
                           . ' busy p50 %s p99 %s ms (%s)', $run, $prio,
                           f2($i->{p50}), f2($i->{p99}), f2($b->{p50}),
                           f2($b->{p99}), $notes[-1]));
        }
        ng_stop($ng);
        push @rows, [ 'idle', $prio, \%idle, '' ],
                    [ '2 transcodes running', $prio, \%busy,
                      'jobs after each wrk: ' . join(', ', @notes) ];
    }
    md('## 5. Static file latency under transcodes', '',
       "`wrk -t1 -c4 -d${WRK_S}s --latency` on a 2 kB static file from the same"
       . ' nginx (one worker), idle and while two 1080p → 720p transcodes (20 s'
       . ' clip, codec threads auto) run in the module\'s thread pool, alternating,'
       . " $RUNS times each; medians, and each run's p99."
       . ' `vconv_priority` is the nice value of the transcode threads'
       . ' (default 10).', '',
       '| condition | vconv_priority | req/s | p50 (ms) | p99 (ms) | p99 samples (ms) | note |',
       '| --- | ---: | ---: | ---: | ---: | --- | --- |');
    for my $r (@rows) {
        my $v = $r->[2];
        md(sprintf('| %s | %d | %s | %s | %s | %s | %s |', $r->[0], $r->[1],
                   f1(median(@{ $v->{rps} })), f2(median(@{ $v->{p50} })),
                   f2(median(@{ $v->{p99} })), samples(@{ $v->{p99} }), $r->[3]));
    }
    md('');
}


# ------------------------------------------------------------ 6. codec threads

if ($ONLY{threads}) {
    my (%one, %two, @bad);
    my @settings = (1, 2, 0);
    for my $run (1 .. $RUNS) {
        for my $th (@settings) {
            my $ng = nginx(threads => $th);
            my $out = "$W/th.mp4";
            my $r = module_job($ng, upload_cmd($ng,
                '/api/jobs?format=mp4&height=720&wait=1', $IN_MP4,
                output => $out, name => 'in.mp4'));
            my $chk = $r->{ok} ? check($out, \%checks_v720) : "HTTP $r->{code}";
            unlink $out;
            push @bad, "threads $th: $chk" if $chk ne 'ok';
            push @{ $one{$th} }, $chk eq 'ok' ? $r->{wall} : undef;
            logmsg(sprintf('run %d threads %d one job %6.2fs (%s)', $run, $th,
                           $r->{wall}, $chk));
            next if $th == 2 && $run > 1;   # 2 jobs: 1 vs auto (and 2 once)

            # two jobs at once; the time until both are done
            my $t = time;
            my @p = map {
                bg(upload_cmd($ng, '/api/jobs?format=mp4&height=720&wait=1',
                              $IN_MP4, output => "$W/th$_.mp4", name => 'in.mp4'))
            } 1, 2;
            my @rr = map { bg_wait($_, 900) } @p;
            my $wall = time - $t;
            my $ok = 1;
            for my $i (1, 2) {
                my $c = check("$W/th$i.mp4", \%checks_v720);
                if ($c ne 'ok' || $rr[$i - 1]{rc}) {
                    $ok = 0;
                    push @bad, "threads $th, 2 jobs: $c";
                }
                unlink "$W/th$i.mp4";
            }
            ng_stop($ng);
            push @{ $two{$th} }, $ok ? $wall : undef;
            logmsg(sprintf('run %d threads %d two jobs %6.2fs', $run, $th, $wall));
        }
    }
    md('## 6. `vconv_codec_threads`', '',
       'One 1080p → 720p job (upload + transcode + download, `wait=1`), and two'
       . ' such jobs started together (time until both are done), per'
       . ' `vconv_codec_threads` value (0 = auto: libav picks one thread per'
       . ' CPU for each codec and the filter graph). Thread pool: one thread'
       . ' per CPU, so the two jobs run at once.', '',
       '| vconv_codec_threads | one job (s) | samples | two jobs at once (s) | samples |',
       '| --- | ---: | --- | ---: | --- |');
    for my $th (@settings) {
        md(sprintf('| %s | %s | %s | %s | %s |', $th == 0 ? '0 (auto)' : $th,
                   f2(median(@{ $one{$th} })), samples(@{ $one{$th} }),
                   f2(median(@{ $two{$th} // [] })), samples(@{ $two{$th} // [] })));
    }
    my ($best1) = sort { (median(@{ $one{$a} }) // 1e9) <=> (median(@{ $one{$b} }) // 1e9) } @settings;
    my ($best2) = sort { (median(@{ $two{$a} }) // 1e9) <=> (median(@{ $two{$b} }) // 1e9) }
                  grep { $two{$_} } @settings;
    md('', sprintf('Fastest for one job: **%s**; for two jobs at once: **%s**.%s',
                   $best1 // 'n/a', $best2 // 'n/a',
                   @bad ? ' Failed checks: ' . join('; ', @bad) : ''), '');
}


# ------------------------------------------------------------ 7. sandbox

# vconv_isolation process (a sandboxed child per job) against thread (the
# transcode in the pool thread): wall time end to end, the child's start
# cost (the module's info line), the helper's idle memory.  Both nginx log
# at info, not debug (Debian's nginx is built --with-debug: a debug log
# costs a few ms per job), and each job is timed by curl's own
# %{time_total}, not by run()'s 20 ms polling of the curl process.
if ($ONLY{sandbox}) {
    my $clip = "$W/clip1.mp4";
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30:duration=1',
           '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1',
           '-map', '0:v', '-map', '1:a', '-c:v', 'libx264',
           '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-c:a', 'aac',
           '-movflags', '+faststart', $clip);

    # "idle": process isolation whose spare exits after 1 s without a
    # job, so that each of its jobs is the first one after idle
    my %ng = (
        process => nginx(http => "    vconv_isolation process;\n"),
        thread => nginx(http => "    vconv_isolation thread;\n"),
        idle => nginx(http => "    vconv_isolation process;\n"
                             . "    vconv_sandbox_spare_idle 1s;\n"),
    );

    # a worker's sandbox at rest: its helper and the helper's children
    my $sandbox_mem = sub {
        my ($wpid, $want_spare) = @_;
        my ($helper) = grep { slurp("/proc/$_/comm") =~ /^vconv-sandbox/ }
                       @{ VconvNginx::_children($wpid) };
        return {} unless $helper;
        my @kids;
        VconvNginx::poll(30, sub {
            @kids = grep { slurp("/proc/$_/stat") !~ /^\d+ \(.*\) Z/ }
                    @{ VconvNginx::_children($helper) };
            $want_spare ? grep({ slurp("/proc/$_/comm") =~ /^vconv-spare$/ }
                               @kids)
                        : !@kids;
        }, 0.1);
        my %m;
        for my $p ($helper, @kids) {
            my %r = slurp("/proc/$p/smaps_rollup") =~ /^(\w+):\s+(\d+) kB/mg;
            my $who = $p == $helper ? 'helper' : 'spare';
            $m{$who}{private} += ($r{Private_Dirty} // 0)
                               + ($r{Private_Clean} // 0);
            $m{$who}{pss} += $r{Pss} // 0;
            $m{$who}{rss} += $r{Rss} // 0;
        }
        return \%m;
    };
    my $mem_ready = $sandbox_mem->($ng{process}{wpid}, 1);
    my $mem_idle = $sandbox_mem->($ng{idle}{wpid}, 0);

    md('', '## Sandbox: vconv_isolation process vs thread', '',
       'Time of one job end to end (upload, conversion, download with'
       . ' wait=1) as curl\'s %{time_total}, the sides alternating in the'
       . ' same run, each job started once the previous one\'s sandbox is'
       . ' at rest (its spare ready); medians, ms.  "Idle": the first job'
       . ' after vconv_sandbox_spare_idle let the spare go (the job\'s'
       . ' child forked from the helper), against thread mode.', '',
       '| job | runs | process ms | thread ms | process / thread |',
       '|---|---|---|---|---|');

    for my $row (['jpg thumbnail, 1 s 720p clip', $clip, 'format=jpg', 'jpg',
                  $ENV{BENCH_JPG_RUNS} // 15],
                 ['1080p H.264 → 720p MP4 (10 s)', $IN_MP4,
                  'format=mp4&height=720', 'mp4', $RUNS < 3 ? 3 : $RUNS])
    {
        my ($name, $in, $q, $ext, $n) = @$row;
        my %t;
        my @sides = $ext eq 'jpg' ? qw(process thread idle)
                                  : qw(process thread);
        for my $i (1 .. $n) {
            for my $mode ($i % 2 ? @sides : reverse @sides) {
                if ($mode eq 'idle') {
                    $sandbox_mem->($ng{idle}{wpid}, 0);
                } else {
                    sandbox_rest($ng{$mode}{wpid});
                }
                sleep 0.2;
                my $r = run(upload_cmd($ng{$mode}, "/api/jobs?$q&wait=1",
                                       $in, output => "$W/sb.$ext"),
                            timeout => 900);
                my ($code, $secs) = split ' ', $r->{out};
                die "sandbox bench: $mode $q failed ($r->{out})\n"
                    unless $r->{rc} == 0 && ($code // 0) == 200;
                push @{ $t{$mode} }, $secs * 1000;
            }
        }
        my ($p, $th) = (median(@{ $t{process} }), median(@{ $t{thread} }));
        logmsg("sandbox: $name: process ", f1($p), ' ms, thread ', f1($th),
               ' ms; process ', join(' ', map { f1($_) } @{ $t{process} }),
               '; thread ', join(' ', map { f1($_) } @{ $t{thread} }));
        md("| $name | $n | " . f1($p) . ' | ' . f1($th) . ' | '
           . ratio($p, $th) . ' |');
        next unless $t{idle};
        my $id = median(@{ $t{idle} });
        logmsg("sandbox: $name, first after idle: ",
               join(' ', map { f1($_) } @{ $t{idle} }));
        md("| $name, first job after idle (no spare) | $n | " . f1($id)
           . ' | ' . f1($th) . ' | ' . ratio($id, $th) . ' |');
    }

    # last byte -> file: a streaming upload paced over $LB_S s (the
    # transcode keeps up with it), raw body, wait=1; from the moment the
    # last body byte is written to the socket to the answer's headers
    # (sent once the output is in place)
    my $LB_S = 6;
    my %lb;
    for my $i (1 .. 3) {
        for my $mode ($i % 2 ? qw(process thread) : qw(thread process)) {
            my ($dt, $st, $len) = last_byte_job($ng{$mode}, $IN_MKV,
                                                'format=mp4&height=720',
                                                $LB_S);
            die "sandbox bench: last-byte $mode: status $st\n"
                unless $st == 200 && $len > 0;
            push @{ $lb{$mode} }, $dt;
        }
    }
    md("| last byte → file, 1080p MKV → 720p MP4 (10 s) streamed over "
       . "${LB_S} s | 3 | " . f1(1000 * median(@{ $lb{process} })) . ' | '
       . f1(1000 * median(@{ $lb{thread} })) . ' | '
       . ratio(median(@{ $lb{process} }), median(@{ $lb{thread} }))
       . ' |');
    logmsg('sandbox: last byte -> file: process ',
           samples(@{ $lb{process} }), ' s; thread ',
           samples(@{ $lb{thread} }), ' s');

    # median and p95 of the child's start, ms
    my $spawn = sub {
        my @us = sort { $a <=> $b } $_[0]->error_log
                     =~ /sandboxed child ready in (\d+) us/g;
        my $p95 = @us ? $us[int(0.95 * $#us + 0.5)] : undef;
        return scalar(@us) . ' jobs: median '
            . (@us ? f2(median(@us) / 1000) : 'n/a') . ' ms, p95 '
            . (defined $p95 ? f2($p95 / 1000) : 'n/a') . ' ms';
    };
    md('', 'Start of the sandboxed child (job sent to the helper until the'
       . ' child is confined and reading), on a ready spare ('
       . $spawn->($ng{process}) . '); the first job after idle, forked'
       . ' then (' . $spawn->($ng{idle}) . ').', '',
       'Idle memory of a worker\'s sandbox (/proc/PID/smaps_rollup,'
       . ' MB): with its spare ready (helper + spare): private '
       . mb($mem_ready->{helper}{private}) . ' + '
       . mb($mem_ready->{spare}{private}) . ', Pss '
       . mb($mem_ready->{helper}{pss}) . ' + '
       . mb($mem_ready->{spare}{pss}) . ', Rss '
       . mb($mem_ready->{helper}{rss}) . ' + '
       . mb($mem_ready->{spare}{rss}) . '.  After'
       . ' vconv_sandbox_spare_idle (the helper alone): private '
       . mb($mem_idle->{helper}{private}) . ', Pss '
       . mb($mem_idle->{helper}{pss}) . ', Rss '
       . mb($mem_idle->{helper}{rss}) . ' (its private pages are the'
       . ' libraries\' relocated data, shared with the spare while there'
       . ' is one).');

    ng_stop($_) for values %ng;
}


# ------------------------------------------------------------ 8. scheduler

# every process of an nginx (master, workers, sandbox helpers, their
# job children), for the memory of the whole tree
sub all_pids {
    my @all = @_;
    for (my $i = 0; $i < @all; $i++) {
        push @all, @{ VconvNginx::_children($all[$i]) };
    }
    return @all;
}

sub pids_rss {
    my $kb = 0;
    $kb += proc_status($_)->{VmRSS} // 0 for @_;
    return $kb;
}

# proportional set size: a page shared by k processes counts 1/k in each,
# so the sum is the tree's real footprint (the RSS sum counts every
# shared library once per process: seven nginx processes against N
# ffmpegs)
sub pids_pss {
    my $kb = 0;
    for my $p (@_) {
        my ($v) = slurp("/proc/$p/smaps_rollup") =~ /^Pss:\s+(\d+) kB/m;
        $kb += $v // 0;
    }
    return $kb;
}

sub mean {
    my @v = grep { defined } @_;
    return undef unless @v;
    my $s = 0;
    $s += $_ for @v;
    return $s / @v;
}

# nearest rank
sub pctl {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } grep { defined } @v;
    return @v ? $v[int($p * $#v + 0.5)] : undef;
}

# the commands started at once; each one's time from the common start to
# its end, the time until all are done, and the peak of $rss->() (kB)
sub burst {
    my ($cmds, $rss) = @_;
    my $t = time;
    my @p = map { bg($_) } @$cmds;
    my %left = map { $p[$_] => $_ } 0 .. $#p;
    my (@lat, @rc);
    my ($peak, $ppeak) = (0, 0);
    while (%left) {
        my ($v, $pv) = $rss->(\@p);
        $peak = $v if ($v // 0) > $peak;
        $ppeak = $pv if ($pv // 0) > $ppeak;
        for my $pid (keys %left) {
            next unless waitpid($pid, WNOHANG) == $pid;
            my $i = delete $left{$pid};
            $rc[$i] = $? >> 8;
            $lat[$i] = time - $t;
            my $k = delete $KIDS{$pid};
            unlink "$k->{tag}.out", "$k->{tag}.err";
        }
        last if time - $t > 1800;
        sleep 0.05;
    }
    kill 'KILL', keys %left if %left;
    return { lat => \@lat, rc => \@rc, total => time - $t, peak_kb => $peak,
             pss_kb => $ppeak, mean => mean(@lat), p95 => pctl(0.95, @lat) };
}

sub sched_nginx {
    my ($http) = @_;
    my $ng = VconvNginx->new(workers => 2, listen_opts => 'reuseport',
                             http => $http // '');
    open my $fh, '>', "$ng->{html}/$STATIC" or die $!;
    print $fh "<!doctype html><title>static</title>\n", ('x' x 64 . "\n") x 30;
    close $fh;
    $ng->start;
    $ng->{mpid} = $ng->master_pid;
    return $ng;
}

if ($ONLY{burst}) {
    my $cli_args = $ROWS[1]{cli};      # 1080p H.264 -> 720p MP4
    my $q = 'format=mp4&height=720&wait=1';
    my $runs = $ENV{BENCH_BURST_RUNS} // 1;
    my @sizes = split /,/, ($ENV{BENCH_BURST_SIZES} // '4,8');
    my (@rows, @bad);
    for my $n (@sizes) {
        for my $run (1 .. $runs) {
            # one ffmpeg CLI per upload, all at once (an Express/Flask app)
            my $c = burst([map {
                ['nice', '-n', $PRIO, 'ffmpeg', '-nostdin', '-hide_banner',
                 '-loglevel', 'error', '-y', @$cli_args, "$W/bc$_.mp4"]
            } 1 .. $n], sub { my @a = map { all_pids($_) } @{ $_[0] };
                              (pids_rss(@a), pids_pss(@a)) });
            for my $i (1 .. $n) {
                my $k = check("$W/bc$i.mp4", \%checks_v720);
                push @bad, "CLI $n/$i: $k" if $k ne 'ok';
                unlink "$W/bc$i.mp4";
            }
            push @{ $rows[0]{$n} }, $c;
            logmsg(sprintf('burst %d CLI: mean %.2f p95 %.2f total %.2f s, '
                           . 'peak RSS %s MB, Pss %s MB', $n, $c->{mean},
                           $c->{p95}, $c->{total}, mb($c->{peak_kb}),
                           mb($c->{pss_kb})));

            # the module: its scheduler's default, and every job at once
            my $i = 1;
            for my $mode (['default', ''],
                          ['all at once', "    vconv_max_running $n;\n"],
                          ['one at a time', "    vconv_max_running 1;\n"])
            {
                my $ng = sched_nginx($mode->[1]);
                my $m = burst([map {
                    upload_cmd($ng, "/api/jobs?$q", $IN_MP4,
                               output => "$W/bm$_.mp4", name => 'in.mp4')
                } 1 .. $n], sub { my @a = all_pids($ng->{mpid});
                                  (pids_rss(@a), pids_pss(@a)) });
                for my $j (1 .. $n) {
                    my $k = check("$W/bm$j.mp4", \%checks_v720);
                    push @bad, "module $mode->[0] $n/$j: $k" if $k ne 'ok';
                    unlink "$W/bm$j.mp4";
                }
                ng_stop($ng);
                push @{ $rows[$i++]{$n} }, $m;
                logmsg(sprintf('burst %d module %s: mean %.2f p95 %.2f '
                               . 'total %.2f s, peak RSS %s MB, Pss %s MB',
                               $n, $mode->[0],
                               $m->{mean}, $m->{p95}, $m->{total},
                               mb($m->{peak_kb}), mb($m->{pss_kb})));
            }
        }
    }

    my $half = $cores > 1 ? int($cores / 2) : 1;
    md('## 8. Bursts: one scheduler for all workers', '',
       "N uploads of the 10 s 1080p clip → 720p MP4 started at once"
       . " (upload, conversion, download with wait=1; 2 workers,"
       . " reuseport), against one ffmpeg CLI per upload started at once"
       . " on the local file (what an Express or Flask app that spawns"
       . " ffmpeg does; no upload counted for it). Latency: each job from"
       . " the common start to its end. Peak memory of the whole process"
       . " tree (nginx master, workers, sandbox helpers and their spares,"
       . " job children; or every ffmpeg), sampled every 50 ms, two ways:"
       . " the sum of Pss (a page shared by k processes counts 1/k in each:"
       . " the tree's real footprint) and the sum of RSS (every shared"
       . " library counted once per process). Module default ="
       . " vconv_max_running $half (half the CPUs) and codec threads from"
       . " the slots; all at once = vconv_max_running N; one at a time ="
       . " vconv_max_running 1. $runs run(s), medians. Targets (burst of"
       . ' 4): mean ≤ 0.65× the CLI, p95 not worse, peak memory ≤ 0.5×.', '',
       '| N | setup | mean (s) | p95 (s) | total (s) | peak Pss (MB) | peak RSS (MB) | mean / CLI | p95 / CLI | total / CLI | Pss / CLI | RSS / CLI |',
       '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for my $n (@sizes) {
        my @med;
        for my $i (0 .. 3) {
            my $r = $rows[$i]{$n};
            my %m;
            for my $k (qw(mean p95 total peak_kb pss_kb)) {
                $m{$k} = median(map { $_->{$k} } @$r);
            }
            push @med, \%m;
        }
        my @names = ('ffmpeg CLI per upload', 'module (default)',
                     'module, all at once', 'module, one at a time');
        for my $i (0 .. 3) {
            my ($m, $c) = ($med[$i], $med[0]);
            md(sprintf('| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s '
                       . '| %s | %s |',
                       $n, $names[$i], f2($m->{mean}), f2($m->{p95}),
                       f2($m->{total}), mb($m->{pss_kb}), mb($m->{peak_kb}),
                       $i ? ratio($m->{mean}, $c->{mean}) : '',
                       $i ? ratio($m->{p95}, $c->{p95}) : '',
                       $i ? ratio($m->{total}, $c->{total}) : '',
                       $i ? ratio($m->{pss_kb}, $c->{pss_kb}) : '',
                       $i ? ratio($m->{peak_kb}, $c->{peak_kb}) : ''));
        }
    }
    md('', @bad ? 'Failed checks: ' . join('; ', @bad) : 'Every output'
       . ' checked with ffprobe (h264 1280x720, aac, 10 s).', '');

}

if ($ONLY{headline}) {
    # --- the headline: last byte of the upload -> the converted file
    unless ($t720_cli) {
        my $c = cli('-i', $IN_MKV, '-vf', 'scale=1280:720,format=yuv420p',
                    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23',
                    '-c:a', 'aac', '-b:a', '128k', '-movflags', '+faststart',
                    "$W/cli.mp4");
        $t720_cli = $c->{wall};
        unlink "$W/cli.mp4";
    }
    my $size = -s $IN_MKV;
    my $rate = int($size / (1.3 * $t720_cli));
    my (@head, @full, @hbad);
    for my $run (1 .. $RUNS) {
        my $ng = sched_nginx();
        my $resp = "$W/head.json";
        my $t = time;
        my $up = run(upload_cmd($ng, '/api/jobs?format=mp4&height=720',
                                $IN_MKV, rate => $rate, output => $resp,
                                name => 'in.mkv'), timeout => 300);
        my $last_byte = time;
        my $id = job_id_from($resp);
        my $job = {};
        while ($id && time - $t < 600) {
            $job = job_get($ng, $id);
            last if ($job->{status} // '') =~ /^(done|failed|canceled)$/;
            sleep 0.02;
        }
        my ($ms) = ($job->{finished} // '') =~ /\.(\d{3})Z$/;
        my $fin = defined $ms
                  ? VconvNginx::ts($job->{finished}) + $ms / 1000 : undef;
        if (($job->{status} // '') eq 'done' && defined $fin) {
            run(['curl', '-sS', '-o', "$W/head.mp4",
                 $ng->url("/api/jobs/$id/output")], timeout => 60);
            my $k = check("$W/head.mp4", \%checks_v720);
            push @hbad, $k if $k ne 'ok';
            push @head, $fin - $last_byte;
            push @full, $fin - $t;
        } else {
            push @hbad, 'job ' . ($job->{status} // 'missing')
                        . ' (HTTP ' . curl_code($up) . ')';
        }
        unlink "$W/head.mp4", $resp;
        ng_stop($ng);
        logmsg(sprintf('headline run %d: last byte -> file %s s',
                       $run, f2($head[-1])));
    }
    my $up_s = $size / $rate;
    md('## 9. Headline: last byte of the upload → converted file', '',
       sprintf('The 10 s 1080p MKV (%.1f MB) uploaded raw at `curl'
               . ' --limit-rate %d` (%.1f s, 1.3× the CLI transcode time'
               . ' %.2f s) to 720p MP4. Module: from the moment the upload\'s'
               . ' 202 answer arrives (its last byte) to the job\'s "finished"'
               . ' time (ms); upload-then-CLI: the CLI transcode on the'
               . ' complete file. %d runs, median. Target: ≤ 0.5 s.',
               $size / 1e6, $rate, $up_s, $t720_cli, $RUNS), '',
       '| setup | last byte → file (s) | samples | upload start → file (s) |',
       '| --- | ---: | --- | ---: |',
       sprintf('| module, streaming | **%s** | %s | %s |', f2(median(@head)),
               samples(@head), f2(median(@full))),
       sprintf('| upload, then ffmpeg CLI | %s | | %s |', f2($t720_cli),
               f2($up_s + $t720_cli)),
       '', sprintf('Ratio module / upload-then-CLI (last byte → file): %s.%s',
                   ratio(median(@head), $t720_cli),
                   @hbad ? ' Failed: ' . join('; ', @hbad) : ''), '');

}

if ($ONLY{static4}) {
    # --- static p99 while 4 jobs run
    my $ng = sched_nginx();
    my (%idle, %busy, @notes);
    for my $run (1 .. $RUNS) {
        my $i = wrk($ng);
        push @{ $idle{$_} }, $i->{$_} for qw(rps p50 p99);
        my @ids;
        for my $n (1 .. 4) {
            my $resp = "$W/s4-$n.json";
            run(upload_cmd($ng, '/api/jobs?format=mp4&height=720', $IN20,
                           output => $resp, name => 'in20.mkv'),
                timeout => 60);
            push @ids, job_id_from($resp);
        }
        sleep 0.5;
        my $b = wrk($ng);
        push @{ $busy{$_} }, $b->{$_} for qw(rps p50 p99);
        my @st = map { $_ ? (job_get($ng, $_)->{status} // '?') : 'no job' }
                 @ids;
        push @notes, join('/', @st);
        job_delete($ng, $_) for grep { $_ } @ids;
        sleep 1;
        logmsg(sprintf('static under 4 jobs run %d: idle p99 %s, busy p99'
                       . ' %s ms (%s)', $run, f2($i->{p99}), f2($b->{p99}),
                       $notes[-1]));
    }
    ng_stop($ng);
    md('## 10. Static file p99 while 4 jobs run', '',
       "`wrk -t1 -c4 -d${WRK_S}s --latency` on the 2 kB static file, 2"
       . ' workers, default scheduler (vconv_max_running = half the'
       . ' CPUs), idle and while 4 uploads of the 20 s clip → 720p are running or queued;'
       . " $RUNS runs, medians.", '',
       '| condition | req/s | p50 (ms) | p99 (ms) | p99 samples (ms) | jobs after each wrk |',
       '| --- | ---: | ---: | ---: | --- | --- |',
       sprintf('| idle | %s | %s | %s | %s | |', f1(median(@{ $idle{rps} })),
               f2(median(@{ $idle{p50} })), f2(median(@{ $idle{p99} })),
               samples(@{ $idle{p99} })),
       sprintf('| 4 jobs | %s | %s | %s | %s | %s |',
               f1(median(@{ $busy{rps} })), f2(median(@{ $busy{p50} })),
               f2(median(@{ $busy{p99} })), samples(@{ $busy{p99} }),
               join(', ', @notes)),
       '', sprintf('p99 busy / idle: %s.', ratio(median(@{ $busy{p99} }),
                                                  median(@{ $idle{p99} }))),
       '');
}


# ------------------------------------------------------------ 11. listeners

# 500 event streams on a queued job while the zone holds many records:
# the CPU the workers spend on their ticks (issue 18: each tick walked
# every record under the zone's lock to find the queue position)
sub http_keepalive {
    my ($ng) = @_;
    require IO::Socket::INET;
    return IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $ng->port, Proto => 'tcp');
}

# one request on a keep-alive socket; the status
sub http_once {
    my ($s, $req) = @_;
    print $s $req or return 0;
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        my $n = sysread($s, my $buf, 4096) or return 0;
        $head .= $buf;
    }
    my ($st) = $head =~ m{^HTTP/1\.1 (\d+)};
    my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
    my $body = length($head) - index($head, "\r\n\r\n") - 4;
    while (defined $len && $body < $len) {
        my $n = sysread($s, my $buf, $len - $body) or last;
        $body += $n;
    }
    return $st // 0;
}

sub workers_cpu {
    my ($ng) = @_;
    my $t = 0;
    $t += proc_cpu($_) // 0 for @{ $ng->worker_pids };
    return $t;
}

if ($ONLY{listeners}) {
    my $nrec = $ENV{BENCH_RECORDS} // 10000;
    my $ng = sched_nginx("    vconv_max_running 1;\n"
                         . "    vconv_max_queue 100000;\n");
    # records: finished jobs made cheaply, 100 random bytes each (they
    # fail as unsupported input and keep their record for the TTL)
    logmsg("making $nrec job records");
    my $s = http_keepalive($ng);
    my $made = 0;
    for my $i (1 .. $nrec) {
        my $junk = join '', map { chr int rand 256 } 1 .. 100;
        my $st = http_once($s, "POST /api/jobs?format=mp4 HTTP/1.1\r\n"
                               . "Host: b\r\nContent-Length: 100\r\n\r\n"
                               . $junk);
        $made++ if $st == 202;
        $s = http_keepalive($ng) unless $st;
    }
    # they queue for the one slot: the listeners are measured once they
    # have all ended, so that their work is not counted
    my ($held, $busy) = (0, 1);
    my $t0 = time;
    while ($busy && time - $t0 < 900) {
        my $m = run(['curl', '-sS', $ng->url('/api/metrics')], timeout => 10);
        my %st = $m->{out} =~ /^vconv_jobs\{state="([a-z]+)"\} (\d+)$/mg;
        $held = 0;
        $held += $_ for values %st;
        $busy = ($st{uploading} // 0) + ($st{queued} // 0)
                + ($st{running} // 0);
        sleep 1 if $busy;
    }
    logmsg("$made uploads answered 202; the zone holds $held records,"
           . " $busy not ended");

    # a running job holds the only slot; the listeners wait on a queued one
    my @ids;
    for my $n (1, 2) {
        my $resp = "$W/l$n.json";
        run(upload_cmd($ng, '/api/jobs?format=mp4&height=720', $IN20,
                       output => $resp, name => 'in20.mkv'), timeout => 60);
        push @ids, job_id_from($resp);
    }
    my @ls;
    for (1 .. 500) {
        my $c = http_keepalive($ng) or last;
        print $c "GET /api/jobs/$ids[1]/events HTTP/1.1\r\nHost: b\r\n\r\n";
        $c->blocking(0);
        push @ls, $c;
    }
    sleep 2;
    my $st = job_get($ng, $ids[1])->{status} // '?';
    my $cpu0 = workers_cpu($ng);
    my $t = time;
    while (time - $t < 10) {
        sysread($_, my $buf, 65536) for @ls;
        sleep 0.2;
    }
    my $cpu = (workers_cpu($ng) - $cpu0) / (time - $t);
    my $st2 = job_get($ng, $ids[1])->{status} // '?';
    close $_ for @ls;
    job_delete($ng, $_) for grep { $_ } @ids;
    ng_stop($ng);
    logmsg(sprintf('%d listeners, %d records: workers %.1f%% CPU (job %s,'
                   . ' then %s)', scalar @ls, $held, 100 * $cpu, $st, $st2));
    md('## 11. 500 event streams on a queued job', '',
       sprintf('%d event streams (`/api/jobs/{id}/events`) on a queued job'
               . ' while another job runs (vconv_max_running 1) and the zone'
               . ' holds %d records (junk uploads that failed); the CPU of'
               . ' both workers together over 10 s, as a share of one core.'
               . ' The queued job was %s before and %s after. Target'
               . ' (issue 18): under 2 %% per worker.',
               scalar @ls, $held, $st, $st2), '',
       '| listeners | records | workers CPU (% of a core) |',
       '| ---: | ---: | ---: |',
       sprintf('| %d | %d | %.2f |', scalar @ls, $held, 100 * $cpu), '');
}


# ------------------------------------------------------------ 12. 50 ms link

# Issue 19: an upload over HTTP/2 runs at its stream's window per round
# trip.  Through tools/delay_proxy.pl (25 ms each way, no bandwidth bound),
# a lossless H.264 file remuxed (vcodec=copy), over HTTP/1.1 and HTTP/2,
# plain (h2c) and over TLS, for each upload location's settings; then the
# worker's RSS while 50 HTTP/2 uploads run at once.

if ($ONLY{link}) {
    my $in = "$W/link.mp4";
    logmsg('making a ~31 MB lossless H.264 file for the 50 ms link');
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=64',
           '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0',
           '-pix_fmt', 'yuv420p', $in);
    my $in10 = "$W/link10.mp4";
    ffmpeg('-i', $in, '-t', 22, '-c', 'copy', $in10);
    my $mb = (-s $in) / 1e6;
    my ($cert, $key) = VconvNginx::tls_pair($W);

    # one nginx per setting: HTTP/1.1 on its port (the API's polls too),
    # h2c and TLS (HTTP/1.1 or h2 by ALPN) beside; TLS 1.3 as in Debian's
    # nginx.conf and conf.example (nginx 1.22's default stops at 1.2, a
    # handshake of two round trips)
    my $link_nginx = sub {
        my ($loc, $http) = @_;
        my ($p2, $pt) = (VconvNginx::free_port(), VconvNginx::free_port());
        my $ng = nginx(http => $http // '', server =>
            "        listen 127.0.0.1:$p2 http2;\n"
          . "        listen 127.0.0.1:$pt ssl http2;\n"
          . "        ssl_certificate $cert;\n"
          . "        ssl_certificate_key $key;\n"
          . "        ssl_protocols TLSv1.2 TLSv1.3;\n"
          . "        location = /api/link {\n"
          . "            vconv_upload /api/jobs/;\n"
          . "            client_max_body_size 1g;\n"
          . "            $loc\n"
          . "        }\n");
        $ng->{px} = {
            h1  => VconvNginx::delay_proxy($ng->port, 25),
            h2c => VconvNginx::delay_proxy($p2, 25),
            tls => VconvNginx::delay_proxy($pt, 25),
        };
        return $ng;
    };
    my %proto = (
        h1  => ['--http1.1', 'http', 'h1'],
        h2c => ['--http2-prior-knowledge', 'http', 'h2c'],
        h1s => ['--http1.1', 'https', 'tls'],
        h2  => ['--http2', 'https', 'tls'],
    );
    my @protos = qw(h1 h2c h1s h2);
    my $upload = sub {
        my ($ng, $pr, $file) = @_;
        my ($flag, $scheme, $px) = @{ $proto{$pr} };
        my $resp = "$W/link.json";
        my $r = run(['curl', '-sS', '--max-time', 120, '-H', 'Expect:',
                     '-w', '%{http_code} %{time_total} %{http_version}',
                     '-k', $flag, '-X', 'POST', '-T', $file,
                     '-H', 'X-File-Name: in.mp4', '-o', $resp,
                     "$scheme://127.0.0.1:" . $ng->{px}{$px}->port
                     . '/api/link?format=mp4&vcodec=copy'], timeout => 120);
        my ($code, $secs) = $r->{out} =~ /^(\d{3}) ([\d.]+)/;
        my ($ver) = $r->{out} =~ / (\S+)$/;
        my $id = job_id_from($resp);
        if ($id) {      # the remux's end, so that runs do not overlap
            my $deadline = time + 120;
            while (time < $deadline) {
                last if (job_get($ng, $id)->{status} // '')
                        =~ /^(done|failed|canceled)$/;
                sleep 0.1;
            }
            job_delete($ng, $id);
        }
        logmsg(sprintf('  %-3s HTTP %s (%s): %s s', $pr, $code // '?',
                       $ver // '?', $secs // '?'));
        return ($code // 0) == 202 ? $secs : undef;
    };

    my $load0 = (split ' ', slurp('/proc/loadavg'))[0];
    my @cases = (
        ['the module\'s defaults (no buffer directive)', '', '', $RUNS],
        ['conf.example (`vconv_http2_window 16m`, total 64m)',
         'vconv_http2_window 16m;', '    vconv_http2_window_total 64m;',
         $RUNS],
        ['before: nginx\'s own window (`vconv_http2_window 0`)',
         'vconv_http2_window 0;', '', 1],
        ['before: the old conf.example (`client_body_buffer_size 256k`)',
         'client_body_buffer_size 256k;', '', 1],
        ['`client_body_buffer_size 4m` (a fixed window)',
         'client_body_buffer_size 4m;', '', 1],
    );
    my @rows;
    for my $c (@cases) {
        my ($name, $loc, $http, $runs) = @$c;
        logmsg("50 ms link: $name");
        my $ng = $link_nginx->($loc, $http);
        my %t;
        for my $i (1 .. $runs) {
            # A B C D, D C B A, ...: no protocol always goes first
            for ($i % 2 ? @protos : reverse @protos) {
                push @{ $t{$_} }, $upload->($ng, $_, $in);
            }
        }
        $_->stop for values %{ $ng->{px} };
        ng_stop($ng);
        my %m = map { $_ => median(@{ $t{$_} }) } @protos;
        my $mbs = sub { defined $_[0] && $_[0] > 0
                        ? sprintf('%.1f', $mb / $_[0]) : 'n/a' };
        push @rows, sprintf('| %s | %s | **%s** | %s | %s |', $name,
                            join(' | ', map { sprintf('%s (%s)', f2($m{$_}),
                                                      $mbs->($m{$_})) }
                                        @protos),
                            ratio($m{h2c}, $m{h1}), ratio($m{h2}, $m{h1}),
                            ratio($m{h2}, $m{h1s}));
    }
    my $load1 = (split ' ', slurp('/proc/loadavg'))[0];

    # the worker's RSS with 50 HTTP/2 uploads at once, over the same link:
    # fast ones (the windows open until the worker's budget), slow ones
    # (1 MB/s each, stopped after 8 s), fast ones with a fixed 4m window
    # (client_body_buffer_size: no budget); sent by tools/h2_uploads.mjs
    # (node), and the fast ones again by 50 curls, which spin on a CPU
    # each while their window is exhausted (curl 7.88): the clients' CPU
    # seconds say how much
    my @mem;
    for my $m (['node', undef, ''], ['node', 1 << 20, ''],
               ['node', undef, 'client_body_buffer_size 4m;'],
               ['curl', undef, ''],
               ['curl', undef, 'client_body_buffer_size 4m;'])
    {
        my ($client, $rate, $loc) = @$m;
        my $ng = $link_nginx->($loc, '');
        my $idle = proc_status($ng->{wpid})->{VmRSS};
        my $url = 'http://127.0.0.1:' . $ng->{px}{h2c}->port
                  . '/api/link?format=mp4&vcodec=copy';
        my @c0 = times;
        my @pids;
        if ($client eq 'node') {
            push @pids, bg(['node', "$ROOT/tools/h2_uploads.mjs", $url,
                            $in10, 50, $rate // 0]);
        } else {
            push @pids, bg([curl_base(), '--http2-prior-knowledge',
                            '-X', 'POST', '-T', $in10, '-o', '/dev/null',
                            $url]) for 1 .. 50;
        }
        my ($peak, $t) = (0, time);
        while (time - $t < ($rate ? 8 : 120)) {
            my $v = proc_status($ng->{wpid})->{VmRSS} // 0;
            $peak = $v if $v > $peak;
            # a zombie has finished (bg_wait reaps it below)
            last unless grep { (slurp("/proc/$_/stat") =~ /^\d+ \(.*?\) (\S)/)[0]
                               ne 'Z' } @pids;
            sleep 0.05;
        }
        my $secs = time - $t;
        kill 'KILL', @pids;
        my @r = map { bg_wait($_, 10) } @pids;
        my @c1 = times;
        my $ok = grep { /^202 / } map { split /\n/, $_->{out} } @r;
        $_->stop for values %{ $ng->{px} };
        ng_stop($ng);
        logmsg(sprintf('50 HTTP/2 uploads (%s)%s%s: %d ok in %.1f s,'
                       . ' worker RSS %s -> %s MB', $client,
                       $rate ? " at $rate/s" : '', $loc ? " ($loc)" : '',
                       $ok, $secs, mb($idle), mb($peak)));
        push @mem, sprintf('| %s | %s | %s | %.1f | %.1f | %s | %s | **%s** |',
                           ($rate ? '50 slow (1 MB/s each, stopped after'
                                    . ' 8 s)' : '50 fast (all at once)')
                           . ($loc ? ", `$loc`" : ''), $client,
                           $rate ? '-' : "$ok / 50", $secs,
                           $c1[2] + $c1[3] - $c0[2] - $c0[3],
                           mb($idle), mb($peak), mb($peak - $idle));
    }
    my $load2 = (split ' ', slurp('/proc/loadavg'))[0];

    md('## 12. Upload over a 50 ms link', '',
       sprintf('A %.1f MB lossless H.264 MP4 uploaded raw through'
               . ' tools/delay_proxy.pl (25 ms each way, no bandwidth'
               . ' bound) by curl and remuxed (`format=mp4&vcodec=copy`);'
               . ' curl\'s time to the 202 (seconds, MB/s in brackets),'
               . ' median of %d runs (1 for the reference rows), the'
               . ' protocols alternating; TLS 1.3 (one round trip of'
               . ' handshake more than plain HTTP). Target (issue 19):'
               . ' HTTP/2 at most 2x HTTP/1.1 with the module\'s defaults.'
               . ' Load average %s at the start, %s at the end.',
               $mb, $RUNS, $load0, $load1), '',
       '| upload location settings | HTTP/1.1 | h2c | HTTP/1.1 (TLS) |'
       . ' h2 (TLS) | h2c / HTTP/1.1 | h2 (TLS) / HTTP/1.1 |'
       . ' h2 (TLS) / HTTP/1.1 (TLS) |',
       '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |', @rows, '',
       sprintf('Worker RSS (MB) while 50 HTTP/2 uploads of %.1f MB run at'
               . ' once over the same link, each on its own connection'
               . ' (module defaults: windows up to 16m, 64m for all of a'
               . ' worker\'s uploads; `client_body_buffer_size 4m` a fixed'
               . ' window, which has no such bound); client CPU: the'
               . ' seconds the uploading processes used (curl 7.88 spins'
               . ' while its window is exhausted). Load average %s at the'
               . ' end.', (-s $in10) / 1e6, $load2), '',
       '| uploads | client | answered 202 | seconds | client CPU s | idle'
       . ' | peak | growth |',
       '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |', @mem, '');
}



# ------------------------------------------------------------ 13. tus

# The same file twice into one fresh worker: one raw POST, then tus in
# 5 MB PATCHes (one curl each, a new connection each, as a resuming
# client would), both remuxed (vcodec=copy) while they arrive.  The
# ratio is the tus upload's throughput over the raw POST's.
if ($ONLY{tus}) {
    my $mb = $ENV{BENCH_TUS_MB} // 200;
    my $chunk_mb = 5;
    my $file = "$W/tus.ts";
    my $loops = int($mb * 1048576 / (-s $IN_MKV)) + 1;
    logmsg("tus: making a $mb MB MPEG-TS");
    ffmpeg('-stream_loop', $loops - 1, '-i', $IN_MKV, '-map', '0', '-c', 'copy',
           '-fs', $mb * 1048576, '-f', 'mpegts', $file);
    my $bytes = -s $file;
    my $ng = nginx(server => "        location /api/tus/ {\n"
                           . "            vconv_tus;\n"
                           . "            client_max_body_size 8g;\n"
                           . "        }\n");
    my $q = 'format=mkv&vcodec=copy&acodec=copy';
    my $wait_done = sub {
        my ($id, $peak) = @_;
        my $job = {};
        my $deadline = time + 900;
        while ($id && time < $deadline) {
            my $v = tree_rss($ng->{wpid}) // 0;
            $$peak = $v if $v > $$peak;
            $job = job_get($ng, $id);
            last if ($job->{status} // '') =~ /^(done|failed|canceled)$/;
            sleep 0.1;
        }
        return $job->{status} // 'no job';
    };

    my (%raw, %tus);
    my $idle = tree_rss($ng->{wpid}) // 0;
    my $peak = 0;
    my $t = time;
    my $up = run(upload_cmd($ng, "/api/big?$q", $file, output => "$W/tus-raw.json",
                            name => 'big.ts'),
                 timeout => 900, watch => $ng->{wpid});
    $raw{up} = time - $t;
    $peak = $up->{peak_kb} if $up->{peak_kb} > $peak;
    my $rid = job_id_from("$W/tus-raw.json");
    $raw{status} = $wait_done->($rid, \$peak);
    $raw{all} = time - $t;
    $raw{growth} = $peak - $idle;
    job_delete($ng, $rid) if $rid;

    sleep 1;
    $idle = tree_rss($ng->{wpid}) // 0;
    my $widle = proc_status($ng->{wpid})->{VmRSS} // 0;
    $peak = 0;
    my $meta = 'format ' . MIME::Base64::encode_base64('mkv', '')
             . ',vcodec ' . MIME::Base64::encode_base64('copy', '')
             . ',acodec ' . MIME::Base64::encode_base64('copy', '');
    $t = time;
    my $c = run(['curl', '-sS', '-o', '/dev/null', '-D', '-', '-X', 'POST',
                 '-H', 'Tus-Resumable: 1.0.0', '-H', "Upload-Length: $bytes",
                 '-H', "Upload-Metadata: $meta", $ng->url('/api/tus/')],
                timeout => 30);
    my ($loc) = $c->{out} =~ m{^Location:\s*(\S+)}mi;
    my ($tid) = ($loc // '') =~ m{/([^/]+)$};
    # the PATCHes from this process, a new connection each (as a client
    # that resumes would open), so that no process start is timed
    my ($off, $ok, $n) = (0, 1, 0);
    my $wpeak = 0;
    my $sample = sub {
        my $v = tree_rss($ng->{wpid}) // 0;
        $peak = $v if $v > $peak;
        my $w = proc_status($ng->{wpid})->{VmRSS} // 0;
        $wpeak = $w if $w > $wpeak;
    };
    open my $fh, '<:raw', $file or die "$file: $!";
    while ($tid && $off < $bytes) {
        my $len = $bytes - $off < $chunk_mb * 1048576
                  ? $bytes - $off : $chunk_mb * 1048576;
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                         PeerPort => $ng->port,
                                         Proto => 'tcp') or die "connect: $!";
        print $sock "PATCH /api/tus/$tid HTTP/1.1\r\nHost: localhost\r\n"
            . "Tus-Resumable: 1.0.0\r\nUpload-Offset: $off\r\n"
            . "Content-Type: application/offset+octet-stream\r\n"
            . "Content-Length: $len\r\nConnection: close\r\n\r\n";
        sysseek($fh, $off, 0);
        my $left = $len;
        while ($left > 0) {
            my $r = sysread($fh, my $buf, $left < 1048576 ? $left : 1048576);
            die "read: $!" unless $r;
            my $o = 0;
            while ($o < $r) {
                my $w = syswrite($sock, $buf, $r - $o, $o);
                die "send: $!" unless defined $w;
                $o += $w;
            }
            $left -= $r;
        }
        my $resp = '';
        while (my $r = sysread($sock, my $b, 65536)) { $resp .= $b }
        close $sock;
        my ($new) = $resp =~ m{^Upload-Offset:\s*(\d+)}mi;
        unless ($resp =~ m{^HTTP/1\.1 204} && defined $new && $new > $off) {
            $ok = 0;
            last;
        }
        $off = $new;
        $n++;
        # between PATCHes, not timed: /proc walks are slow on a busy box
        my $t1 = time;
        $sample->();
        $t += time - $t1;
    }
    close $fh;
    $tus{wpeak} = $wpeak;
    $tus{up} = time - $t;
    $tus{status} = $ok ? $wait_done->($tid, \$peak) : "PATCH failed at $off";
    $tus{all} = time - $t;
    $tus{growth} = $peak - $idle;
    $tus{wgrowth} = $tus{wpeak} - $widle;
    $tus{patches} = $n;
    job_delete($ng, $tid) if $tid;
    ng_stop($ng);
    unlink $file;

    my $ratio = $raw{up} > 0 && $tus{up} > 0 ? $raw{up} / $tus{up} : undef;
    logmsg(sprintf('tus %.0f MB: raw POST %.1fs (%s), tus %d PATCHes %.1fs (%s),'
                   . ' throughput ratio %s, worker +%.1f MB',
                   $bytes / 1048576, $raw{up}, $raw{status}, $tus{patches},
                   $tus{up}, $tus{status}, f2($ratio), $tus{growth} / 1024));
    md('## 13. Resumable upload (tus) against one raw POST', '',
       sprintf('A %.0f MB MPEG-TS into one fresh worker over loopback, remuxed'
               . ' (`vcodec=copy`) while it arrives: once as one raw POST'
               . ' (curl), once with tus in %d MB PATCHes (%d of them, each'
               . ' on a new connection, sent by the bench itself). Throughput'
               . ' ratio: tus over raw (1.00: as fast). RSS growth: the peak'
               . ' during the upload and the remux over the RSS before, of'
               . ' the worker with its sandbox helper and the job\'s child,'
               . ' and of the worker process alone (tus only).',
               $bytes / 1048576, $chunk_mb, $tus{patches}), '',
       '| upload | upload (s) | upload + remux (s) | job | MB/s | growth, worker tree (MB) | growth, worker alone (MB) |',
       '| --- | ---: | ---: | --- | ---: | ---: | ---: |',
       sprintf('| raw POST | %.1f | %.1f | %s | %.0f | %s | |', $raw{up},
               $raw{all}, $raw{status}, $bytes / 1048576 / ($raw{up} || 1),
               mb($raw{growth})),
       sprintf('| tus, %d MB PATCHes | %.1f | %.1f | %s | %.0f | %s | %s |',
               $chunk_mb, $tus{up}, $tus{all}, $tus{status},
               $bytes / 1048576 / ($tus{up} || 1), mb($tus{growth}),
               mb($tus{wgrowth})),
       '', sprintf('Throughput ratio tus / raw: **%s**.', f2($ratio)), '');
}


# ------------------------------------------------------------ 14. outputs

# vconv-cli timed with /usr/bin/time: user + system CPU of the process and
# its threads, and the wall time
sub vcli {
    my (@args) = @_;
    my $tf = "$W/vtime.txt";
    my $r = run(['nice', '-n', $PRIO, '/usr/bin/time', '-f', '%U %S',
                 '-o', $tf, "$ROOT/build/vconv-cli", @args], timeout => 900);
    my ($u, $s) = split ' ', slurp($tf) // '';
    $r->{cpu} = defined $s ? $u + $s : undef;
    $r->{ok} = $r->{rc} == 0;
    return $r;
}

if ($ONLY{outputs}) {
    # issue 13: one decode for mp4,webm,jpg against three single jobs
    my $in = "$W/outputs-1080.mp4";
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30:duration=10',
           '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:'
           . 'duration=10', '-c:v', 'libx264', '-preset', 'veryfast',
           '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', $in);
    my %o;
    for my $case (['full size', []], ['height=480', ['height=480']]) {
        my ($name, $opts) = @$case;
        for my $run (1 .. $RUNS) {
            my ($cpu, $wall, $ok) = (0, 0, 1);
            for my $f (qw(mp4 webm jpg)) {
                my $r = vcli($in, "$W/one.$f", "format=$f", @$opts);
                $ok &&= $r->{ok} && defined $r->{cpu};
                $cpu += $r->{cpu} // 0;
                $wall += $r->{wall};
                unlink "$W/one.$f";
            }
            my $l = vcli($in, "$W/list", 'format=mp4,webm,jpg', @$opts);
            $ok &&= $l->{ok} && defined $l->{cpu}
                    && -s "$W/list/out.mp4" && -s "$W/list/out.webm"
                    && -s "$W/list/out.jpg";
            unlink glob("$W/list/*");
            rmdir "$W/list";
            next unless $ok;
            push @{ $o{$name}{cpu} }, $l->{cpu} / $cpu;
            push @{ $o{$name}{wall} }, $l->{wall} / $wall;
            push @{ $o{$name}{abs} }, sprintf('%.1f/%.1f s', $l->{cpu}, $cpu);
            logmsg(sprintf('outputs %s run %d: list cpu %.2fs wall %.2fs,'
                           . ' singles cpu %.2fs wall %.2fs', $name, $run,
                           $l->{cpu}, $l->{wall}, $cpu, $wall));
        }
    }
    unlink $in;
    md('## 14. One upload, many outputs (issue 13)', '',
       '`vconv-cli IN DIR format=mp4,webm,jpg` (one demux, one decode, three'
       . ' encoders) against `format=mp4`, `format=webm` and `format=jpg` one'
       . ' after the other on the same 10 s 1080p30 H.264/AAC clip. CPU is'
       . ' user + system seconds of the process (`/usr/bin/time`); wall is'
       . ' the list against the three singles run one after the other.'
       . ' Target: CPU ratio <= 0.9. Only the decode is shared, so the'
       . ' saving is the decode\'s share: small when the outputs are'
       . ' encoded at the full 1080p, larger when they are scaled down.', '',
       '| outputs | CPU list / singles (median) | wall list / singles'
       . ' | CPU seconds (list/singles) per run |',
       '| --- | ---: | ---: | --- |');
    for my $name ('full size', 'height=480') {
        md(sprintf('| mp4,webm,jpg, %s | %s | %s | %s |', $name,
                   f2(median(@{ $o{$name}{cpu} // [] })),
                   f2(median(@{ $o{$name}{wall} // [] })),
                   join(', ', @{ $o{$name}{abs} // [] })));
    }
    md('');
}


# ------------------------------------------------------------ report

my $load1 = (split ' ', slurp('/proc/loadavg'))[0];
md(sprintf('Total bench time %.0f s; load average at the end %s.',
           time - $T0, $load1));

my $text = join("\n", @md) . "\n";
print $text;
if ($OUT ne '-') {
    open my $fh, '>', $OUT or die "$OUT: $!";
    print $fh $text;
    close $fh;
    logmsg("written to $OUT");
}
